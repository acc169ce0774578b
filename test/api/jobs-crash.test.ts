import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueueJob } from '../../server/jobs/index.ts';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

/** The kill comes once 30 are applied (4 at a time): most are still to do, and some are in flight. */
const JOBS = 100;
const silent = createLogger({ level: 'silent' });

/** The log lines of `<dataDir>/vault.log` from byte `from` on, parsed. */
function logLines(dataDir: string, from: number): Record<string, unknown>[] {
  return readFileSync(join(dataDir, 'vault.log'))
    .subarray(from)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function waitForLog(dataDir: string, from: number, what: string, found: (lines: Record<string, unknown>[]) => boolean): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (!found(logLines(dataDir, from))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe.each(storageKinds())('background jobs across a kill -9 on %s', (storage) => {
  let running: VaultProcess | undefined;
  afterEach(() => running?.kill('SIGTERM'));

  it(
    'completes every job after a restart, losing none and applying none twice',
    async () => {
      const dataDir = await newDataDir(storage, 'jobs-crash');
      const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
      const env: Record<string, string> = {
        TESSERA_JOB_LEASE_MS: '1000',
        TESSERA_JOB_POLL_MS: '100',
        TEST_JOB_DELAY_MS: '20',
        ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
      };
      /** The vault's database while no vault process has it open (PGlite has one owner). */
      const withDatabase = async <T>(work: (db: Db) => Promise<T>): Promise<T> => {
        const db = await openStorage({ dataDir, databaseUrl, log: silent });
        try {
          return await work(db);
        } finally {
          await db.close();
        }
      };
      await withDatabase((db) =>
        db.transaction(async (tx) => {
          for (let n = 0; n < JOBS; n++) await enqueueJob(tx, { kind: 'test.apply', payload: { n } });
        }),
      );

      running = await startVaultProcess({ dataDir, env, entry: 'test/support/job-vault.ts' });
      await waitForLog(dataDir, 0, 'some jobs to be applied', (lines) => lines.filter((line) => line['msg'] === 'test job applied').length >= 30);
      await running.kill('SIGKILL');
      expect(running.child.signalCode).toBe('SIGKILL');
      const applied = logLines(dataDir, 0).filter((line) => line['msg'] === 'test job applied').length;
      expect(applied).toBeLessThan(JOBS);

      const restartedAt = readFileSync(join(dataDir, 'vault.log')).length;
      running = await startVaultProcess({ dataDir, env, entry: 'test/support/job-vault.ts' });
      await waitForLog(dataDir, restartedAt, 'every job to be done', (lines) =>
        lines.some((line) => line['msg'] === 'test jobs remaining' && line['remaining'] === 0),
      );
      await running.kill('SIGTERM');

      await withDatabase(async (db) => {
        const effects = await db.query<{ jobs: number; once: number }>(
          `select count(*)::int as jobs, count(*) filter (where applied = 1)::int as once from test_job_effects`,
        );
        expect(effects.rows[0]).toEqual({ jobs: JOBS, once: JOBS });
        const jobs = await db.query<{ state: string; n: number; retried: number }>(
          // This test's kind only: the vault keeps jobs of its own (the subscription scan's chain).
          `select state, count(*)::int as n, count(*) filter (where attempts > 1)::int as retried from jobs where kind = 'test.apply' group by state`,
        );
        expect(jobs.rows).toEqual([{ state: 'done', n: JOBS, retried: expect.any(Number) }]);
        // The jobs in flight at the kill were claimed again once their lease ran out.
        expect(jobs.rows[0]!.retried).toBeGreaterThan(0);
      });
    },
    120_000,
  );
});
