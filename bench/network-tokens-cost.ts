/**
 * `npm run bench:network-tokens-cost`: the CPU one background provisioning
 * costs, which on a 2-core machine is what decides whether provisioning keeps
 * up with tokenization (bench:network-tokens) — wall rates there swing with
 * whatever else runs, CPU per token much less. A vault in this process takes
 * BENCH_TOKENS (1,500) reusable tokenizations at concurrency 16 with the
 * merchant's `network_tokens` off, then as many with it on, and waits until
 * every network token is settled; the CPU used — this process (its PGlite
 * thread included) and, on BENCH_STORAGE=postgres, the cluster's backends —
 * per tokenization in each, and the difference: what provisioning adds a
 * token. (Until 2026-12-05 provisioning was a job, held back during the
 * tokenizations and drained alone; the process that makes a token now
 * provisions it as it goes, so it is measured beside them.) A third of
 * BENCH_TOKENS goes first, untimed, to warm the vault up. Sandbox latency as
 * configured (50–300 ms unless TESSERA_SANDBOX_TSP_DELAY_MS says otherwise).
 */
import { Agent } from 'node:http';
import { api, createMerchant } from '../test/support/api.ts';
import { fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { startTestVault } from '../test/support/vault.ts';
import { makeCiphertexts } from './ciphertexts.ts';
import { clusterCpuMs, processCpuMs } from './cpu.ts';
import { post } from './post.ts';

const TOKENS = Number(process.env['BENCH_TOKENS'] ?? 1500);
const CONCURRENCY = 16;
const storage = process.env['BENCH_STORAGE'] === 'postgres' ? 'postgres' : 'pglite';

const postgres = storage === 'postgres' ? await startThrowawayPostgres({ name: 'bench-network-tokens-cost' }) : undefined;
if (postgres !== undefined) process.env['TESSERA_TEST_PG_URL'] = postgres.url;
const vault = await startTestVault({ storage, name: 'bench-network-tokens-cost' });
try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop' });
  const [jwk] = await fetchJwks(vault.url);
  const url = new URL('/v1/tokens', vault.url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const backlog = async () =>
    (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from network_tokens where merchant_id = $1 and settled_at is null', [merchant.id])).rows[0]!.n;
  const setting = async (on: boolean) => api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: on } });

  const warmUp = Math.ceil(TOKENS / 3);
  const jwes = await makeCiphertexts(jwk!, warmUp + 2 * TOKENS);
  let next = 0;
  let errors = 0;
  const tokenize = async (count: number) => {
    const until = next + count;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < until) {
          if ((await post(agent, url, merchant.secretKey, JSON.stringify({ card: jwes[next++], reusable: true }))) !== 201) errors++;
        }
      }),
    );
  };
  /** CPU ms of this process and of the cluster for `work`, and its seconds. */
  const measured = async (work: () => Promise<void>) => {
    const cpu0 = processCpuMs();
    const pg0 = clusterCpuMs(postgres?.dataDir);
    const started = performance.now();
    await work();
    return { seconds: (performance.now() - started) / 1000, cpu: processCpuMs() - cpu0, pg: clusterCpuMs(postgres?.dataDir) - pg0 };
  };
  const perToken = (m: { cpu: number; pg: number }) =>
    `${(m.cpu / TOKENS).toFixed(2)} ms this process` + (postgres === undefined ? '' : ` + ${(m.pg / TOKENS).toFixed(2)} ms PostgreSQL = ${((m.cpu + m.pg) / TOKENS).toFixed(2)} ms`);

  await tokenize(warmUp);
  const off = await measured(() => tokenize(TOKENS));
  await setting(true);
  const on = await measured(async () => {
    await tokenize(TOKENS);
    let most = 0;
    for (let n = await backlog(); n > 0; n = await backlog()) {
      most = Math.max(most, n);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await vault.vault.jobs.whenIdle();
    console.log(`  (with network_tokens on, at most ${most} pending as the tokenizations ended)`);
  });
  const settled = await vault.vault.db.query<{ status: string; n: number }>(
    'select status, count(*)::int as n from network_tokens where merchant_id = $1 group by status order by status',
    [merchant.id],
  );
  console.log(`network tokens cost on ${storage}: ${TOKENS} tokenizations a condition, concurrency ${CONCURRENCY} (${errors} errors)`);
  console.log(`  off: ${(TOKENS / off.seconds).toFixed(0)}/s, CPU a tokenization ${perToken(off)}`);
  console.log(`  on:  ${(TOKENS / on.seconds).toFixed(0)}/s to the last settlement, CPU a tokenization ${perToken(on)}`);
  console.log(`  CPU provisioning adds a token: ${perToken({ cpu: on.cpu - off.cpu, pg: on.pg - off.pg })}; network tokens: ${settled.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
  agent.destroy();
} finally {
  await vault.close();
  await postgres?.destroy();
}
