/**
 * `npm run bench:network-tokens`: does background provisioning keep up with
 * tokenization? A vault (in this process, so the benchmark can watch its
 * database) takes POST /v1/tokens at concurrency 16 for BENCH_SECONDS, first
 * with `network_tokens` off, then on (after BENCH_WARM_UP_SECONDS, 5, of
 * untimed load), with the sandbox token services at
 * their default latency (50–300 ms). Printed: the tokenize rate and p50/p99
 * of each half, the CPU a tokenization cost in each (this process — its
 * PGlite thread included — and the PostgreSQL cluster; with the setting on,
 * provisioning's share too: on a 2-core machine that shared CPU is what
 * decides whether provisioning keeps up), the rise of p99, the pending backlog (network tokens not yet
 * settled) sampled every 250 ms — its largest and its last value, and its
 * course every 2.5 s — and how long the backlog takes to drain after the
 * load stops. BENCH_STORAGE=postgres runs it on a throwaway PostgreSQL
 * instead of PGlite.
 */
import { Agent } from 'node:http';
import { api, createMerchant } from '../test/support/api.ts';
import { fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { startTestVault } from '../test/support/vault.ts';
import { makeCiphertexts } from './ciphertexts.ts';
import { clusterCpuMs, processCpuMs } from './cpu.ts';
import { percentile, sortedCopy } from './stats.ts';
import { post } from './post.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 20);
/** Untimed load first: JIT and the database's caches warm up there, not in the "off" half the "on" half is compared with. */
const WARM_UP_SECONDS = Number(process.env['BENCH_WARM_UP_SECONDS'] ?? 5);
const CONCURRENCY = 16;
const MAX_REQUESTS = 20_000;
const storage = process.env['BENCH_STORAGE'] === 'postgres' ? 'postgres' : 'pglite';

const postgres = storage === 'postgres' ? await startThrowawayPostgres({ name: 'bench-network-tokens' }) : undefined;
if (postgres !== undefined) process.env['TESSERA_TEST_PG_URL'] = postgres.url;
const vault = await startTestVault({ storage, name: 'bench-network-tokens' });
try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop' });
  const [jwk] = await fetchJwks(vault.url);
  const url = new URL('/v1/tokens', vault.url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const backlog = async () =>
    (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from network_tokens where merchant_id = $1 and settled_at is null', [merchant.id])).rows[0]!.n;

  const half = async (label: string, duration = SECONDS) => {
    const jwes = await makeCiphertexts(jwk!, Math.ceil((MAX_REQUESTS / 2) * (duration / SECONDS)));
    const latencies: number[] = [];
    let next = 0;
    let errors = 0;
    const samples: number[] = [];
    const sampler = setInterval(() => void backlog().then((n) => samples.push(n)), 250);
    const cpu0 = processCpuMs() + clusterCpuMs(postgres?.dataDir);
    const started = performance.now();
    const until = started + duration * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until && next < jwes.length) {
          const body = JSON.stringify({ card: jwes[next++], reusable: true });
          const t = performance.now();
          const status = await post(agent, url, merchant.secretKey, body);
          latencies.push(performance.now() - t);
          if (status !== 201) errors++;
        }
      }),
    );
    clearInterval(sampler);
    const cpuMs = processCpuMs() + clusterCpuMs(postgres?.dataDir) - cpu0;
    const seconds = (performance.now() - started) / 1000;
    const sorted = sortedCopy(latencies);
    const result = {
      label,
      requests: latencies.length,
      errors,
      rate: latencies.length / seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      maxBacklog: Math.max(0, ...samples),
      lastBacklog: samples.at(-1) ?? 0,
      cpuPerToken: cpuMs / latencies.length,
    };
    console.log(
      `${label}: ${result.requests} tokenizations (${errors} errors) at ${result.rate.toFixed(1)}/s, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ` +
        `${result.cpuPerToken.toFixed(2)} ms CPU a tokenization (${storage === 'postgres' ? 'vault and PostgreSQL' : 'vault'}, provisioning included); ` +
        `pending network tokens: at most ${result.maxBacklog}, ${result.lastBacklog} at the end` +
        // Whether the backlog is bounded shows in its course, not its end: a sample every 2.5 s.
        (result.maxBacklog > 0 ? ` (every 2.5 s: ${samples.filter((_, i) => i % 10 === 9).join(', ')})` : ''),
    );
    return result;
  };

  console.log(`network tokens bench on ${storage}: ${SECONDS} s per half, concurrency ${CONCURRENCY}, sandbox latency 50–300 ms`);
  if (WARM_UP_SECONDS > 0) await half('warm-up (not compared)', WARM_UP_SECONDS);
  const off = await half('network_tokens off');
  await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: true } });
  const on = await half('network_tokens on ');
  const stopped = performance.now();
  while ((await backlog()) > 0) await new Promise((resolve) => setTimeout(resolve, 100));
  const drain = (performance.now() - stopped) / 1000;
  const settled = await vault.vault.db.query<{ status: string; n: number }>(
    'select status, count(*)::int as n from network_tokens where merchant_id = $1 group by status order by status',
    [merchant.id],
  );
  console.log(`p99 rise with network_tokens on: ${(((on.p99 - off.p99) / off.p99) * 100).toFixed(1)} %`);
  console.log(`backlog drained ${drain.toFixed(1)} s after the load stopped; network tokens: ${settled.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
  agent.destroy();
} finally {
  await vault.close();
  await postgres?.destroy();
}
