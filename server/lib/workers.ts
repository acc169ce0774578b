import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running `entry`. Worker threads do not inherit
 * tsx's loader, so a TypeScript module runs through worker-bootstrap.mjs,
 * which enables it for the thread first (about 0.9 s of CPU per thread); a
 * JavaScript one runs as it is. That is the seam the tests use: in their
 * vaults, the URL of a thread's module names a bundle of it instead
 * (test/support/bundle.ts).
 */
export function startTypeScriptWorker(entry: URL, data: Record<string, unknown> = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData: data });
  return new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), { workerData: { ...data, entry: entry.href } });
}
