/**
 * `npm run bench:payment-batch`: a capture batch of `BENCH_BATCH_ITEMS`
 * (10,000) authorized payments, on PGlite and on PostgreSQL (a throwaway
 * cluster), in a vault in this process. Throughput is the items over the
 * vault's own `created_at` → `completed_at` of the batch. The issue's
 * targets: ≥ 500 operations/s on PostgreSQL, ≥ 250/s on PGlite.
 *
 * Setup writes the authorized payments with one SQL statement on a real
 * token (the sandbox acquirer's capture is a no-op, so nothing else holds
 * them); making 10,000 through `POST /v1/payments` would be the server
 * benchmark's business, not this one's.
 *
 * It also reports the CPU time this process spent per operation while the
 * batch ran (on PGlite that is the whole database too; on PostgreSQL the
 * server's own processes are not counted) and the load average: on a shared
 * machine the throughput says as much about the neighbours as about the
 * vault, the CPU time much less so.
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, createMerchant } from '../test/support/api.ts';
import { cardPlaintext, encryptCard } from '../test/support/cards.ts';
import { createTestDatabase, startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startTestVault, type StorageKind } from '../test/support/vault.ts';

const ITEMS = Number(process.env['BENCH_BATCH_ITEMS'] ?? 10_000);
const TARGET = { pglite: 250, postgres: 500 } as const;

async function run(storage: StorageKind, databaseUrl?: string): Promise<void> {
  const vault = await startTestVault({ storage, name: 'bench-payment-batch', ...(databaseUrl === undefined ? {} : { databaseUrl }) });
  try {
    const merchant = await createMerchant(vault, { name: 'Bench Shop' });
    const card = await encryptCard(vault.url, cardPlaintext());
    const token = (await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card, reusable: true } })).body.token as string;
    const { rows } = await vault.vault.db.query<{ id: string }>(
      `insert into payments (merchant_id, id, token, status, amount, currency, amount_captured, brand, last4, reference, recurring, decline_code)
       select $1, 'pay_bench' || lpad(n::text, 6, '0'), $2, 'authorized', 1000, 'EUR', 0, 'visa', '4242', 'bench-' || n, false, null
         from generate_series(1, $3::integer) as n
       returning id`,
      [merchant.id, token, ITEMS],
    );
    const cpuBefore = process.cpuUsage();
    const accepted = await api(vault.url, 'POST', '/v1/payment-batches', {
      key: merchant.secretKey,
      json: { items: rows.map((row) => ({ op: 'capture', payment: row.id })) },
    });
    if (accepted.status !== 202) throw new Error(`the batch was refused: ${accepted.text}`);
    let batch = accepted.body;
    while (batch.status !== 'completed') {
      await sleep(200);
      batch = (await api(vault.url, 'GET', `/v1/payment-batches/${accepted.body.id}`, { key: merchant.secretKey })).body;
    }
    const cpu = process.cpuUsage(cpuBefore);
    const seconds = (Date.parse(batch.completed_at) - Date.parse(batch.created_at)) / 1000;
    const rate = ITEMS / seconds;
    const cpuMs = (cpu.user + cpu.system) / 1000 / ITEMS;
    console.log(
      `${storage}: ${ITEMS} captures in ${seconds.toFixed(1)} s = ${rate.toFixed(0)} operations/s (target ≥ ${TARGET[storage]}/s: ${rate >= TARGET[storage] ? 'met' : 'NOT met'}); ${batch.succeeded} succeeded, ${batch.failed} failed; ` +
        `this process's CPU ${cpuMs.toFixed(2)} ms per operation; load average ${loadavg()[0]!.toFixed(1)}`,
    );
  } finally {
    await vault.close();
  }
}

const storages = (process.env['BENCH_STORAGE'] ?? 'pglite,postgres').split(',') as StorageKind[];
let cluster: ThrowawayPostgres | undefined;
try {
  for (const storage of storages) {
    if (storage === 'postgres') {
      cluster = await startThrowawayPostgres({ name: 'bench-payment-batch' });
      await run('postgres', await createTestDatabase(cluster.url));
    } else {
      await run('pglite');
    }
  }
} finally {
  await cluster?.destroy();
}
