/**
 * `npm run bench:network-tokens-cost`: the CPU one background provisioning
 * costs, which on a 2-core machine is what decides whether provisioning keeps
 * up with tokenization (bench:network-tokens) — wall rates there swing with
 * whatever else runs, CPU per token much less. A vault in this process, its
 * jobs held back, takes BENCH_TOKENS (1,500) reusable tokenizations with
 * `network_tokens` on; then its runner starts and drains the backlog, and
 * the CPU used meanwhile — this process (its PGlite thread included) and,
 * on BENCH_STORAGE=postgres, the cluster's backends — is divided by the
 * tokens provisioned. Sandbox latency as configured (50–300 ms unless
 * TESSERA_SANDBOX_TSP_DELAY_MS says otherwise).
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
const vault = await startTestVault({ storage, name: 'bench-network-tokens-cost', jobs: false });
try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop' });
  await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: true } });
  const [jwk] = await fetchJwks(vault.url);
  const url = new URL('/v1/tokens', vault.url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const backlog = async () =>
    (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from network_tokens where merchant_id = $1 and settled_at is null', [merchant.id])).rows[0]!.n;

  const jwes = await makeCiphertexts(jwk!, TOKENS);
  let next = 0;
  let errors = 0;
  const cpuBefore = processCpuMs();
  const tokenizeStarted = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < jwes.length) {
        if ((await post(agent, url, merchant.secretKey, JSON.stringify({ card: jwes[next++], reusable: true }))) !== 201) errors++;
      }
    }),
  );
  const tokenizeSeconds = (performance.now() - tokenizeStarted) / 1000;
  const tokenizeCpu = processCpuMs() - cpuBefore;
  agent.destroy();
  const pending = await backlog();
  console.log(
    `network tokens cost on ${storage}: ${TOKENS} tokenizations (${errors} errors) in ${tokenizeSeconds.toFixed(1)} s, ` +
      `${(tokenizeCpu / TOKENS).toFixed(2)} ms of this process's CPU each (postgres not counted); ${pending} network tokens pending`,
  );

  // Settled, so the drain's CPU is the provisioning's alone.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const cpu0 = processCpuMs();
  const pg0 = clusterCpuMs(postgres?.dataDir);
  const started = performance.now();
  await vault.vault.jobs.start();
  const samples: number[] = [];
  for (;;) {
    const n = await backlog();
    samples.push(n);
    if (n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await vault.vault.jobs.whenIdle();
  const seconds = (performance.now() - started) / 1000;
  const cpu = processCpuMs() - cpu0;
  const pg = clusterCpuMs(postgres?.dataDir) - pg0;
  const settled = await vault.vault.db.query<{ status: string; n: number }>(
    'select status, count(*)::int as n from network_tokens where merchant_id = $1 group by status order by status',
    [merchant.id],
  );
  console.log(
    `drained ${pending} in ${seconds.toFixed(1)} s (${(pending / seconds).toFixed(0)}/s); CPU per provisioning: ` +
      `${(cpu / pending).toFixed(2)} ms this process` +
      (postgres === undefined ? '' : ` + ${(pg / pending).toFixed(2)} ms PostgreSQL = ${((cpu + pg) / pending).toFixed(2)} ms`) +
      `; network tokens: ${settled.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`,
  );
} finally {
  await vault.close();
  await postgres?.destroy();
}
