import { Worker } from 'node:worker_threads';

/** Starts a worker thread running a TypeScript module (see worker-bootstrap.mjs). */
export function startTypeScriptWorker(entry: URL, data: Record<string, unknown> = {}): Worker {
  return new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), { workerData: { ...data, entry: entry.href } });
}
