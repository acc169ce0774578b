import { Router } from 'express';
import type { Db } from './storage/db.ts';

/** Probes must answer quickly even when the database hangs. */
const PROBE_TIMEOUT_MS = 1000;

export function healthRoutes(db: Db): Router {
  const router = Router();
  router.get('/healthz', async (_req, res) => {
    const ok = await Promise.race([
      db.query('select 1').then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => setTimeout(resolve, PROBE_TIMEOUT_MS, false).unref()),
    ]);
    res.set('Cache-Control', 'no-store');
    if (ok) res.json({ status: 'ok' });
    else res.status(503).set('Retry-After', '1').json({ status: 'unavailable' });
  });
  return router;
}
