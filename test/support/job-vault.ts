import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { loadConfig } from '../../server/config.ts';
import { createVaultServer } from '../../server/http/server.ts';
import { createLogger } from '../../server/log.ts';
import { openVault } from '../../server/vault.ts';

/**
 * A vault process started as `npm run vault` starts one (a single process:
 * the kill tests need to know which one dies), plus one job kind of the
 * tests' own, `test.apply`: after `TEST_JOB_DELAY_MS`, a job adds 1 to its row
 * of `test_job_effects` in the transaction that completes it, so a job applied
 * twice shows as 2. Every 100 ms it logs how many `test.apply` jobs are not
 * done yet (`test jobs remaining`). Run by test/support/vault-process.ts.
 */
process.umask(0o077);
const config = loadConfig();
const log = createLogger({ level: config.logLevel });
const delayMs = Number(process.env['TEST_JOB_DELAY_MS'] ?? '20');

const vault = await openVault(config, { log });
await vault.db.exec('create table if not exists test_job_effects (job_id text primary key, applied integer not null)');
vault.jobs.register({
  kind: 'test.apply',
  payload: z.object({ n: z.number().int() }),
  concurrency: 4,
  async run(job) {
    await sleep(delayMs, undefined, { signal: job.signal });
    await vault.db.transaction(async (tx) => {
      await tx.query(
        `insert into test_job_effects (job_id, applied) values ($1, 1)
         on conflict (job_id) do update set applied = test_job_effects.applied + 1`,
        [job.id],
      );
      await job.complete(tx);
    });
    log.info({ job: job.id, attempt: job.attempt }, 'test job applied');
  },
});

const progress = setInterval(() => {
  vault.db
    .query<{ n: number }>(`select count(*)::int as n from jobs where kind = 'test.apply' and state <> 'done'`)
    .then(({ rows }) => log.info({ remaining: rows[0]!.n, pid: process.pid }, 'test jobs remaining'))
    .catch(() => undefined);
}, 100);

const server = createVaultServer(vault.app, config.http).listen(config.port, config.host, () => {
  const { port } = server.address() as AddressInfo;
  log.info({ url: `http://localhost:${port}`, storage: vault.db.kind, pid: process.pid }, 'vault listening');
});
process.on('SIGTERM', () => {
  clearInterval(progress);
  server.close(() => void vault.close().finally(() => process.exit(0)));
  server.closeAllConnections();
});
