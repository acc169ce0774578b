import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVaultServer } from '../../../server/http/server.ts';

describe("the vault's HTTP server", () => {
  const app = express();
  app.use(express.json());
  app.post('/echo', (req, res) => void res.status(201).set('x-seen', req.get('x-probe') ?? '').json({ body: req.body as unknown }));
  // What the server made, before Express dispatched it: Express gives every request and response these prototypes anyway.
  const made: { request: boolean; response: boolean }[] = [];
  let base: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const server = createVaultServer(app, { headersMs: 5_000, requestMs: 10_000, keepAliveMs: 5_000, idleMs: 30_000 });
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      made.push({ request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => server.close(() => resolve()));
  });
  afterAll(() => close());

  it("makes its requests and responses with Express's prototypes, and Express works on them as on Node's own", async () => {
    const answer = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-probe': 'yes' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(answer.status).toBe(201);
    expect(answer.headers.get('x-seen')).toBe('yes');
    expect(await answer.json()).toEqual({ body: { a: 1 } });
    expect(made).toEqual([{ request: true, response: true }]);
  });

  it("still answers what Express does not route, and a body Express's JSON parser refuses", async () => {
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    const bad = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(bad.status).toBe(400);
  });
});
