import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestLog } from '../../../server/http/request-log.ts';
import { createLogger } from '../../../server/log.ts';

describe('the access log', () => {
  const lines: Array<{ level: number; msg: string; path: string; status: number }> = [];
  let base: string;
  let close: () => Promise<void>;
  let healthy = true;

  beforeAll(async () => {
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const app = express();
    app.use(requestLog(createLogger({ level: 'info', destination })));
    app.get('/healthz', (_req, res) => void (healthy ? res.json({ status: 'ok' }) : res.status(503).json({ status: 'unavailable' })));
    app.get('/v1/tokens/:token', (_req, res) => void res.status(404).json({}));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => server.close(() => resolve()));
  });
  afterAll(() => close());

  /** Waits for the access line of the request just answered (written when the response finishes). */
  async function lineFor(path: string, count: number) {
    for (let i = 0; i < 100 && lines.filter((l) => l.path === path).length < count; i++) await new Promise((r) => setTimeout(r, 5));
    return lines.filter((l) => l.path === path);
  }

  it('leaves a successful health probe out of the info log, but logs other requests and a failing probe', async () => {
    await fetch(`${base}/healthz`);
    await fetch(`${base}/v1/tokens/tok_x`);
    expect(await lineFor('/v1/tokens/tok_x', 1)).toEqual([expect.objectContaining({ msg: 'request', status: 404, level: 30 })]);
    expect(lines.filter((l) => l.path === '/healthz')).toEqual([]);

    healthy = false;
    await fetch(`${base}/healthz`);
    expect(await lineFor('/healthz', 1)).toEqual([expect.objectContaining({ msg: 'request', status: 503, level: 50 })]);
  });
});
