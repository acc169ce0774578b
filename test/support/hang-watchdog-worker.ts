/**
 * Setup file of every Vitest worker (see hang-watchdog.ts): names the file
 * this worker runs and the test it is in, beats while its event loop turns,
 * and lets the watchdog ask for a Node report with SIGUSR2.
 *
 * The test is written here, synchronously, because Vitest sends its own
 * progress in batches: a test that blocks at once never gets reported as
 * started.
 */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { WATCHDOG_DIR_ENV, type WorkerRecord } from './hang-watchdog.ts';

const dir = process.env[WATCHDOG_DIR_ENV];
const file = expect.getState().testPath;

if (dir !== undefined && file !== undefined) {
  const heartbeat = join(dir, `worker-${process.pid}.json`);
  // Best effort: the watchdog's folder going away must never fail a test.
  const bestEffort = (write: () => void) => {
    try {
      write();
    } catch {
      // Without its records the watchdog still sees the file by Vitest's own progress.
    }
  };
  const record = (test: string | null) => bestEffort(() => writeFileSync(heartbeat, JSON.stringify({ file, test } satisfies WorkerRecord)));
  record(null);
  beforeEach(({ task }) => record(task.fullTestName));
  afterEach(() => record(null));
  // A worker runs file after file (`isolate: false`, vitest.config.ts) and this file runs before each: one heartbeat per worker.
  const beating = Symbol.for('tessera.hang-watchdog.heartbeat');
  const worker = globalThis as { [beating]?: true };
  if (!worker[beating]) {
    worker[beating] = true;
    process.report.directory = dir;
    process.report.signal = 'SIGUSR2';
    process.report.reportOnSignal = true;
    setInterval(() => {
      const now = new Date();
      bestEffort(() => utimesSync(heartbeat, now, now));
    }, 1_000).unref();
  }
}
