import type { AddressInfo } from 'node:net';
import express, { type Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestsInFlight } from '../../../server/http/in-flight.ts';

describe('the requests in flight', () => {
  const traffic = new RequestsInFlight();
  /** Responses held open by the test, by name, with a promise of each one's arrival. */
  const held = new Map<string, Response>();
  const arrived = new Map<string, () => void>();
  let base: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const app = express();
    app.use(traffic.middleware);
    app.get('/hold/:name', (req, res) => {
      held.set(req.params.name, res);
      arrived.get(req.params.name)?.();
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise((resolve) => server.close(() => resolve()));
  });
  afterAll(() => close());

  async function hold(name: string): Promise<{ answered: Promise<unknown>; res: Response }> {
    const here = new Promise<void>((resolve) => arrived.set(name, resolve));
    const answered = fetch(`${base}/hold/${name}`).then((r) => r.text());
    await here;
    return { answered, res: held.get(name)! };
  }

  it('counts a request until it is answered, and a request set aside no longer, once only', async () => {
    const a = await hold('a');
    const b = await hold('b');
    expect(traffic.count).toBe(2);
    let idle = false;
    const waiting = traffic.whenIdle(60_000).then(() => (idle = true));

    traffic.aside(a.res);
    traffic.aside(a.res);
    expect(traffic.count).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).toBe(false);

    a.res.end('a');
    await a.answered;
    expect(traffic.count).toBe(1);

    b.res.end('b');
    await b.answered;
    await waiting;
    expect(traffic.count).toBe(0);
    expect(idle).toBe(true);
  });

  it('wakes background work waiting for idle when the last counted request is set aside', async () => {
    const c = await hold('c');
    const waiting = traffic.whenIdle(60_000);
    traffic.aside(c.res);
    await waiting;
    expect(traffic.busy).toBe(false);
    c.res.end('c');
    await c.answered;
    expect(traffic.count).toBe(0);
  });
});
