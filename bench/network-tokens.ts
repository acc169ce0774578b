/**
 * `npm run bench:network-tokens`: does background provisioning keep up with
 * tokenization, and what does it cost the tokenizations? A vault (in this
 * process, so the benchmark can watch its database) takes reusable
 * POST /v1/tokens, first with `network_tokens` off, then on, with the sandbox
 * token services at their default latency (50–300 ms), in two ways:
 *
 * - Saturation (closed loop): 16 clients each sending its next request as
 *   soon as the last is answered, for BENCH_SECONDS (20) a half, after
 *   BENCH_WARM_UP_SECONDS (5) of untimed load. Both cores are busy, so the
 *   "on" half's provisioning is paid in rate and latency; these rates are
 *   also the vault's sustained rates, off and on.
 * - At a fixed rate (open loop): requests sent on a schedule, BENCH_RATE a
 *   second, or BENCH_RATE_FRACTION (0.7) of the saturation "on" rate, the
 *   same for both halves, BENCH_OPEN_SECONDS (20) each; a request's latency
 *   counts from the time it was due, not from when it went out, so a vault
 *   that falls behind shows as queueing (no coordinated omission). This is
 *   the issue's measure: tokenize p99 at the vault's sustained rate with the
 *   setting on against off, ≤ 20 % higher.
 *
 * Printed per half: the rate, p50/p99, the CPU a tokenization cost (this
 * process — its PGlite thread included — and the PostgreSQL cluster; with
 * the setting on, provisioning's share too), the pending backlog (network
 * tokens not yet settled) sampled every 250 ms — its largest and last value
 * and its course every 2.5 s —, the p99 change and how long the backlog
 * takes to drain after the load stops. BENCH_STORAGE=postgres runs it on a
 * throwaway PostgreSQL instead of PGlite.
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
const OPEN_SECONDS = Number(process.env['BENCH_OPEN_SECONDS'] ?? 20);
/**
 * The fixed rate's share of what the vault sustains with the setting on
 * (the saturation "on" rate): a vault is run below its ceiling, and at the
 * ceiling itself an open loop's queue grows without bound in either half,
 * so its p99 says nothing about provisioning.
 */
const RATE_FRACTION = Number(process.env['BENCH_RATE_FRACTION'] ?? 0.7);
const FIXED_RATE = process.env['BENCH_RATE'] === undefined ? undefined : Number(process.env['BENCH_RATE']);
const CONCURRENCY = 16;
/** Sockets the open loop may hold at once; requests due beyond them wait in the agent, and that wait counts. */
const OPEN_SOCKETS = 256;
const MAX_REQUESTS = 20_000;
const TARGET_P99_RISE = 20;
const storage = process.env['BENCH_STORAGE'] === 'postgres' ? 'postgres' : 'pglite';

interface Half {
  label: string;
  requests: number;
  errors: number;
  rate: number;
  p50: number;
  p99: number;
  maxBacklog: number;
  lastBacklog: number;
  cpuPerToken: number;
  /** CPU used over the half's wall time: how many of the machine's cores the vault kept busy. */
  cores: number;
}

const postgres = storage === 'postgres' ? await startThrowawayPostgres({ name: 'bench-network-tokens' }) : undefined;
if (postgres !== undefined) process.env['TESSERA_TEST_PG_URL'] = postgres.url;
const vault = await startTestVault({ storage, name: 'bench-network-tokens' });
try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop' });
  const [jwk] = await fetchJwks(vault.url);
  const url = new URL('/v1/tokens', vault.url);
  const backlog = async () =>
    (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from network_tokens where merchant_id = $1 and settled_at is null', [merchant.id])).rows[0]!.n;
  const setNetworkTokens = (on: boolean) => api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: on } });
  const drain = async () => {
    const stopped = performance.now();
    while ((await backlog()) > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    return (performance.now() - stopped) / 1000;
  };
  const cpuNow = () => processCpuMs() + clusterCpuMs(postgres?.dataDir);

  /** Runs `load`, sampling the backlog, and summarises its latencies. */
  const measure = async (label: string, load: (answered: (ms: number) => void, fail: (why: string) => void) => Promise<void>): Promise<Half> => {
    const latencies: number[] = [];
    const answeredAt: number[] = [];
    let errors = 0;
    const whys = new Map<string, number>();
    const samples: number[] = [];
    const sampler = setInterval(() => void backlog().then((n) => samples.push(n)), 250);
    const cpu0 = cpuNow();
    const started = performance.now();
    await load((ms) => {
      latencies.push(ms);
      answeredAt.push(performance.now());
    }, (why) => {
      errors++;
      whys.set(why, (whys.get(why) ?? 0) + 1);
    });
    clearInterval(sampler);
    const cpuMs = cpuNow() - cpu0;
    const seconds = (performance.now() - started) / 1000;
    const sorted = sortedCopy(latencies);
    // A stall and a steady queue look alike in one p99: its course, by when the answers came, every 5 s.
    const windows: number[][] = [];
    answeredAt.forEach((t, i) => (windows[Math.floor((t - started) / 5000)] ??= []).push(latencies[i]!));
    const course = windows.map((w) => percentile(sortedCopy(w ?? []), 99).toFixed(0)).join(', ');
    const half: Half = {
      label,
      requests: latencies.length,
      errors,
      rate: latencies.length / seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      maxBacklog: Math.max(0, ...samples),
      lastBacklog: samples.at(-1) ?? 0,
      cpuPerToken: cpuMs / latencies.length,
      cores: cpuMs / 1000 / seconds,
    };
    console.log(
      `${label}: ${half.requests} tokenizations (${errors} errors${errors > 0 ? `: ${[...whys].map(([why, n]) => `${why} × ${n}`).join(', ')}` : ''}) at ${half.rate.toFixed(1)}/s, p50 ${half.p50.toFixed(1)} ms, p99 ${half.p99.toFixed(1)} ms (every 5 s: ${course}), ` +
        `${half.cpuPerToken.toFixed(2)} ms CPU a tokenization (${storage === 'postgres' ? 'vault and PostgreSQL' : 'vault'}, provisioning included), ` +
        `${half.cores.toFixed(2)} cores busy; pending network tokens: at most ${half.maxBacklog}, ${half.lastBacklog} at the end` +
        // Whether the backlog is bounded shows in its course, not its end: a sample every 2.5 s.
        (half.maxBacklog > 0 ? ` (every 2.5 s: ${samples.filter((_, i) => i % 10 === 9).join(', ')})` : ''),
    );
    return half;
  };

  /** Saturation: CONCURRENCY clients, each sending its next request when the last is answered. */
  const closed = async (label: string, duration: number) => {
    const jwes = await makeCiphertexts(jwk!, Math.ceil((MAX_REQUESTS / 2) * (duration / SECONDS)));
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    try {
      return await measure(label, async (answered, fail) => {
        let next = 0;
        const until = performance.now() + duration * 1000;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (performance.now() < until && next < jwes.length) {
              const body = JSON.stringify({ card: jwes[next++], reusable: true });
              const t = performance.now();
              const status = await post(agent, url, merchant.secretKey, body);
              answered(performance.now() - t);
              if (status !== 201) fail(`HTTP ${status}`);
            }
          }),
        );
      });
    } finally {
      agent.destroy();
    }
  };

  /**
   * A fixed rate: request i is due at i / rate seconds and sent then, whatever is still unanswered; its latency counts
   * from when it was due. At most MAX_REQUESTS, sent within `duration` seconds.
   */
  const open = async (label: string, rate: number, duration: number) => {
    const count = Math.min(MAX_REQUESTS, Math.round(rate * duration));
    const jwes = await makeCiphertexts(jwk!, count);
    const agent = new Agent({ keepAlive: true, maxSockets: OPEN_SOCKETS });
    try {
      return await measure(label, async (answered, fail) => {
        const answers: Promise<void>[] = [];
        const start = performance.now();
        const due = (i: number) => start + (i * 1000) / rate;
        let sent = 0;
        await new Promise<void>((resolve) => {
          const tick = () => {
            const now = performance.now();
            for (; sent < count && due(sent) <= now; sent++) {
              const scheduled = due(sent);
              answers.push(
                post(agent, url, merchant.secretKey, JSON.stringify({ card: jwes[sent], reusable: true })).then(
                  (status) => {
                    answered(performance.now() - scheduled);
                    if (status !== 201) fail(`HTTP ${status}`);
                  },
                  (error: unknown) => {
                    answered(performance.now() - scheduled);
                    fail(error instanceof Error ? error.message : String(error));
                  },
                ),
              );
            }
            if (sent >= count) resolve();
            else setTimeout(tick, Math.max(0, due(sent) - performance.now()));
          };
          tick();
        });
        await Promise.all(answers);
      });
    } finally {
      agent.destroy();
    }
  };

  const change = (off: Half, on: Half) => ((on.p99 - off.p99) / off.p99) * 100;
  console.log(`network tokens bench on ${storage}: sandbox latency 50–300 ms`);
  let rate = FIXED_RATE ?? NaN;
  if (SECONDS > 0) {
    console.log(`saturation (closed loop, ${CONCURRENCY} clients, ${SECONDS} s a half):`);
    if (WARM_UP_SECONDS > 0) await closed('  warm-up (not compared)', WARM_UP_SECONDS);
    const closedOff = await closed('  network_tokens off', SECONDS);
    await setNetworkTokens(true);
    const closedOn = await closed('  network_tokens on ', SECONDS);
    const closedDrain = await drain();
    console.log(`  p99 change at saturation: ${change(closedOff, closedOn).toFixed(1)} %; backlog drained ${closedDrain.toFixed(1)} s after the load stopped`);
    rate = FIXED_RATE ?? RATE_FRACTION * closedOn.rate;
    if (FIXED_RATE === undefined) console.log(`fixed rate: ${(RATE_FRACTION * 100).toFixed(0)} % of the saturation "on" rate, ${((rate / closedOff.rate) * 100).toFixed(0)} % of "off"`);
  } else if (FIXED_RATE === undefined) throw new Error('BENCH_SECONDS=0 (no saturation halves) needs BENCH_RATE');
  else if (WARM_UP_SECONDS > 0) {
    // With the setting on, so provisioning's code and statements are warm too (the saturation halves do that otherwise).
    await setNetworkTokens(true);
    await open('warm-up (not compared)', FIXED_RATE, WARM_UP_SECONDS);
    await drain();
  }
  console.log(`fixed rate (open loop, ${OPEN_SECONDS} s a half): ${rate.toFixed(1)}/s${FIXED_RATE === undefined ? '' : ' (BENCH_RATE)'}`);
  await setNetworkTokens(false);
  const openOff = await open('  network_tokens off', rate, OPEN_SECONDS);
  await setNetworkTokens(true);
  const openOn = await open('  network_tokens on ', rate, OPEN_SECONDS);
  const openDrain = await drain();
  const rise = change(openOff, openOn);
  console.log(
    `  p99 change at ${rate.toFixed(1)}/s: ${rise.toFixed(1)} % (target ≤ ${TARGET_P99_RISE} %: ${rise <= TARGET_P99_RISE ? 'met' : 'missed'}); ` +
      `pending at most ${openOn.maxBacklog}; backlog drained ${openDrain.toFixed(1)} s after the load stopped`,
  );
  const settled = await vault.vault.db.query<{ status: string; n: number }>(
    'select status, count(*)::int as n from network_tokens where merchant_id = $1 group by status order by status',
    [merchant.id],
  );
  console.log(`network tokens: ${settled.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
} finally {
  await vault.close();
  await postgres?.destroy();
}
