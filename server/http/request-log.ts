import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { clientIp } from './client-ip.ts';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

const HEALTH_PATH = '/healthz';

/**
 * Gives every request an id (echoed as `Request-Id`) and a child logger, and
 * writes one access line when the response finishes: method, route path,
 * status, duration and the client's address (`clientIp`, so an operator can
 * see whom the vault believes behind a proxy) — never headers, query values
 * or bodies. A health probe that succeeds is logged at debug: a load balancer
 * asks every node every few seconds, and those lines would bury the traffic.
 */
export function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    req.id = `req_${randomUUID().replaceAll('-', '')}`;
    req.log = log.child({ request_id: req.id });
    res.setHeader('Request-Id', req.id);
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const level = res.statusCode >= 500 ? 'error' : req.path === HEALTH_PATH ? 'debug' : 'info';
      req.log[level]({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10, client_ip: clientIp(req) }, 'request');
    });
    next();
  };
}
