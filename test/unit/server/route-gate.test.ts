import type { AddressInfo } from 'node:net';
import express, { Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onItsPaths, pathPrefixes } from '../../../server/http/route-gate.ts';

/** `router`, calling `entered` each time Express hands it a request (its `handle`), whatever it then matches. */
function onEnter(router: Router, entered: () => void): Router {
  const counted = router as unknown as { handle: (...args: unknown[]) => unknown };
  const handle = counted.handle.bind(router);
  counted.handle = (...args) => {
    entered();
    return handle(...args);
  };
  return router;
}

/** `app` listening on a loopback port: its base URL, and how to close it. */
async function serve(app: express.Express): Promise<{ base: string; close: () => Promise<void> }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('a router handed only the paths it has routes for', () => {
  /** How often the gated router was entered at all, whatever it then matched. */
  let entered = 0;
  let base: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const router = Router();
    router.use('/v1/guarded', (_req, res, next) => {
      res.set('Guarded', 'yes');
      next();
    });
    router.get('/v1/things', (_req, res) => void res.send('things'));
    router.get('/v1/things/:id/act', (req, res) => void res.send(`act ${req.params['id']}`));
    router.get('/v1/guarded/inside', (_req, res) => void res.send('inside'));
    router.get('/v2/fields{.:ext}', (req, res) => void res.send(`fields ${req.params['ext'] ?? ''}`));
    router.get(/^\/v1\/files\//, (req, res) => void res.send(`file ${req.path}`));
    const app = express();
    app.use(onItsPaths(onEnter(router, () => (entered += 1))));
    app.use((_req, res) => void res.status(404).send('after the router'));
    ({ base, close } = await serve(app));
  });
  afterAll(() => close());

  const get = async (path: string) => {
    const before = entered;
    const response = await fetch(`${base}${path}`);
    return { status: response.status, text: await response.text(), guarded: response.headers.get('guarded'), entered: entered - before };
  };

  it.each([
    ['/v1/things', 'things'],
    ['/V1/Things', 'things'],
    ['/v1/things/', 'things'],
    ['/v1/things/t_1/act', 'act t_1'],
    ['/v1/guarded/inside', 'inside'],
    ['/v2/fields', 'fields '],
    ['/v2/fields.json', 'fields json'],
    ['/v1/files/a.js', 'file /v1/files/a.js'],
  ])('lets %s through to the route Express matches it to', async (path, answer) => {
    expect(await get(path)).toMatchObject({ status: 200, text: answer, entered: 1 });
  });

  it.each(['/v1/thingsx', '/v1/other', '/v1', '/', '/v3/things', '/v1/guardedx', '/v1/filesx/a.js'])('passes %s on without entering the router', async (path) => {
    expect(await get(path)).toMatchObject({ status: 404, text: 'after the router', entered: 0, guarded: null });
  });

  it('enters the router for a path under one of its prefixes that no route takes, which then passes it on', async () => {
    expect(await get('/v1/things/t_1/other')).toMatchObject({ status: 404, text: 'after the router', entered: 1 });
    expect(await get('/v1/guarded/elsewhere')).toMatchObject({ status: 404, guarded: 'yes', entered: 1 });
    // `/v2/fields{.:ext}` is read as all of `/v2`: its second segment is not whole.
    expect(await get('/v2/elsewhere')).toMatchObject({ status: 404, entered: 1 });
  });
});

describe('the paths a router is read to have', () => {
  const withRoutes = (build: (router: Router) => void) => {
    const router = Router();
    build(router);
    return pathPrefixes(router);
  };

  it('are the first one or two plain segments of each route and mounted middleware, lower-cased', () => {
    expect(
      withRoutes((r) => {
        r.get('/v1/Tokens/:token/verify', () => undefined);
        r.post('/healthz', () => undefined);
        r.get('/pay/:id', () => undefined);
        r.use(['/v1/webhook-endpoints', '/v1/webhook-deliveries'], () => undefined);
        r.get('/v1/sri.json', () => undefined);
        r.get(/^\/v1\/assets\//, () => undefined);
        r.get(/^\/v2\/thing/, () => undefined);
      }),
    ).toEqual(['/v1/tokens', '/healthz', '/pay', '/v1/webhook-endpoints', '/v1/webhook-deliveries', '/v1/sri.json', '/v1/assets', '/v2']);
  });

  it.each<[string, (router: Router) => void]>([
    ['middleware for every path', (r) => void r.use(() => undefined)],
    ['a route that starts with a parameter', (r) => void r.get('/:anything', () => undefined)],
    ['a route for /', (r) => void r.get('/', () => undefined)],
    ['a wildcard route', (r) => void r.get('/*rest', () => undefined)],
    ['a regular expression anchored on no whole segment', (r) => void r.get(/^\/v1/, () => undefined)],
    ['a regular expression not anchored at all', (r) => void r.get(/\/v1\/things\//, () => undefined)],
  ])('are every path when the router has %s', (_name, build) => {
    expect(
      withRoutes((r) => {
        r.get('/v1/things', () => undefined);
        build(r);
      }),
    ).toBeUndefined();
  });
});

describe('several routers behind one gate', () => {
  const entered: string[] = [];
  let base: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const counted = (name: string, build: (router: Router) => void) => {
      const router = Router();
      build(router);
      return onEnter(router, () => entered.push(name));
    };
    const first = counted('first', (r) => {
      r.get('/v1/shared/first', (_req, res) => void res.send('first'));
      r.get('/v1/shared/boom', () => {
        throw new Error('boom');
      });
    });
    const second = counted('second', (r) => {
      r.get('/v1/shared/second', (_req, res) => void res.send('second'));
      r.get('/v1/shared/boom', (_req, res) => void res.send('never: the error skips the later routers'));
    });
    const third = counted('third', (r) => void r.get('/v1/third', (_req, res) => void res.send('third')));
    const app = express();
    app.use(onItsPaths(first, second, third));
    app.use((_req, res) => void res.status(404).send('after the routers'));
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => void res.status(500).send(error.message));
    ({ base, close } = await serve(app));
  });
  afterAll(() => close());

  const get = async (path: string) => {
    entered.length = 0;
    const response = await fetch(`${base}${path}`);
    return { status: response.status, text: await response.text(), entered: [...entered] };
  };

  it('takes them in order, entering only those whose paths the request can be', async () => {
    expect(await get('/v1/shared/first')).toEqual({ status: 200, text: 'first', entered: ['first'] });
    expect(await get('/v1/shared/second')).toEqual({ status: 200, text: 'second', entered: ['first', 'second'] });
    expect(await get('/v1/third')).toEqual({ status: 200, text: 'third', entered: ['third'] });
    expect(await get('/v1/shared/none')).toEqual({ status: 404, text: 'after the routers', entered: ['first', 'second'] });
    expect(await get('/v2/none')).toEqual({ status: 404, text: 'after the routers', entered: [] });
  });

  it('hands an error to the error handlers without entering the routers after', async () => {
    expect(await get('/v1/shared/boom')).toEqual({ status: 500, text: 'boom', entered: ['first'] });
  });
});
