/**
 * `npm run bench:network-tokens`: does background provisioning keep up with
 * tokenization, and what does it cost the tokenizations? A vault (in this
 * process, so the benchmark can watch its database) takes reusable
 * POST /v1/tokens with its merchant's `network_tokens` setting off and on,
 * with the sandbox token services at their default latency (50–300 ms).
 *
 * Off and on are compared in interleaved windows, not as one half after the
 * other: on a shared (or merely noisy) machine two consecutive minutes differ
 * by more than the ±20 % being judged — a few stalls decide a p99 —, so each
 * condition gets several windows spread over the same stretch of time, in
 * the order off, on, on, off, off, on, … (a linear drift of the machine
 * falls on both alike), and each condition's latencies are pooled. The
 * toggle is the one merchant's setting (PATCH /v1/merchant before the
 * window), so both conditions run the same merchant, key, tables and cache
 * state; only provisioning differs. Every window starts with no network
 * token pending (the one before is drained first, so "off" really is off),
 * and its first BENCH_LEAD_IN_SECONDS (1) of load are sent but not counted
 * (an "on" window's provisioning takes the sandbox's latency to start).
 *
 * - Saturation (closed loop): 16 clients each sending its next request as
 *   soon as the last is answered, BENCH_SECONDS (20) a condition in
 *   BENCH_SATURATION_WINDOWS (4) windows each, after BENCH_WARM_UP_SECONDS
 *   (5) of untimed load with the setting on. Both cores are busy, so the
 *   "on" windows' provisioning is paid in rate and latency; these rates are
 *   also the vault's sustained rates, off and on.
 * - At a fixed rate (open loop): requests sent on a schedule, BENCH_RATE a
 *   second, or BENCH_RATE_FRACTION (0.7) of the saturation "on" rate, the
 *   same in every window, BENCH_WINDOWS (6) windows a condition of
 *   BENCH_WINDOW_SECONDS (10) each; a request's latency counts from the time
 *   it was due, not from when it went out, so a vault that falls behind
 *   shows as queueing (no coordinated omission). This is the issue's
 *   measure: tokenize p99 at the vault's sustained rate with the setting on
 *   against off, ≤ 20 % higher.
 *
 * Printed per window: its p50/p99 and pending backlog; per condition: the
 * pooled rate, p50/p99 and the CPU a tokenization cost (this process — its
 * PGlite thread included — and the PostgreSQL cluster, counted until the
 * window's backlog is drained, so an "on" window's includes all of its
 * provisioning; the difference is what a provisioning costs under load);
 * then the pooled p99 ratio with a 90 % interval from resampling the windows
 * (how far the windows' spread lets the ratio be trusted) and the largest
 * backlog. BENCH_STORAGE=postgres runs it on a throwaway PostgreSQL instead
 * of PGlite; with it, BENCH_VAULTS=2 runs two vaults on the one database (in
 * this process, each with its own pool, listening connection and job runner;
 * the requests sent to each in turn), as production runs one vault process
 * per core. BENCH_DIAG=1 prints, per window and per request sent, the
 * statements the vaults sent by kind (claims that found nothing too), the job
 * notifications, and on PostgreSQL the cluster's CPU by process and its time
 * by statement and function (pg_stat_statements; bench/network-tokens-diag.ts);
 * per statement kind its items, round trip and, on PGlite, its time on and
 * its wait for PGlite's thread; the main thread's event-loop delay and GC.
 *
 * The load comes from a client in a process of its own that costs little CPU
 * (bench/load-client.ts; its CPU a request is printed), so the cores the
 * vault shares are not taken by the client: a vault's clients are merchants'
 * servers on other machines. BENCH_CLIENT=main sends with Node's HTTP client
 * from this process's main thread instead, the vault's own event loop, as
 * every run before 2026-12-04 20:00 did.
 *
 * BENCH_CONTROL_CORES=0.3 (a share of a core) runs the control instead: the
 * setting stays off in every window, and the "on" windows run a process
 * that only uses that share of a core (bench/cpu-load.ts, in slices of
 * BENCH_CONTROL_SLICE_MS, 3). Its ratio is what the same CPU, doing nothing
 * for the vault, costs the tokenizations' p99 on this machine: size it to
 * the CPU the setting adds (its ms a tokenization × the rate / 1000).
 */
import { Agent } from 'node:http';
import { api, createMerchant } from '../test/support/api.ts';
import { fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { startTestVault } from '../test/support/vault.ts';
import { PROVISION_JOB } from '../server/network-tokens/service.ts';
import { makeCiphertexts } from './ciphertexts.ts';
import { clusterCpuMs, processCpuMs, threadCpuMs } from './cpu.ts';
import { diagnose, withStatementStats } from './network-tokens-diag.ts';
import { percentile, sortedCopy } from './stats.ts';
import { paced, post } from './post.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import type { LoadJob, LoadResult } from './load-client.ts';
import { bundled } from '../test/support/bundle.ts';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 20);
const SATURATION_WINDOWS = Number(process.env['BENCH_SATURATION_WINDOWS'] ?? 4);
/** Untimed load first, with the setting on: JIT, the database's caches and provisioning's statements warm up there. */
const WARM_UP_SECONDS = Number(process.env['BENCH_WARM_UP_SECONDS'] ?? 5);
const WINDOWS = Number(process.env['BENCH_WINDOWS'] ?? 6);
const WINDOW_SECONDS = Number(process.env['BENCH_WINDOW_SECONDS'] ?? 10);
/** Load sent at the start of every window and not counted: an "on" window's provisioning only starts after the sandbox's latency. */
const LEAD_IN_SECONDS = Number(process.env['BENCH_LEAD_IN_SECONDS'] ?? 1);
/**
 * The fixed rate's share of what the vault sustains with the setting on
 * (the saturation "on" rate): a vault is run below its ceiling, and at the
 * ceiling itself an open loop's queue grows without bound in either
 * condition, so its p99 says nothing about provisioning.
 */
const RATE_FRACTION = Number(process.env['BENCH_RATE_FRACTION'] ?? 0.7);
const FIXED_RATE = process.env['BENCH_RATE'] === undefined ? undefined : Number(process.env['BENCH_RATE']);
const CONCURRENCY = 16;
/** Sockets the open loop may hold at once; requests due beyond them wait in the agent, and that wait counts. */
const OPEN_SOCKETS = 256;
/**
 * Ciphertexts are made before each window (≈ 1.4 ms each on a loaded machine, too slow to make all up front): a
 * saturation window gets CLOSED_RATE_HEADROOM times the fastest rate seen so far (the warm-up's included), at least
 * CLOSED_RATE_FLOOR a second. A window that runs out of them ends early and counts only the time it ran.
 */
const CLOSED_RATE_HEADROOM = 1.5;
const CLOSED_RATE_FLOOR = 500;
const TARGET_P99_RISE = 20;
/** Resamplings of the windows for the ratio's interval. */
const RESAMPLES = 1000;
const MIN_WINDOWS_FOR_VERDICT = 3;
const storage = process.env['BENCH_STORAGE'] === 'postgres' ? 'postgres' : 'pglite';
/** The control (BENCH_CONTROL_CORES): "on" windows run this share of a core of unrelated CPU, with the setting off. */
const CONTROL_CORES = process.env['BENCH_CONTROL_CORES'] === undefined ? undefined : Number(process.env['BENCH_CONTROL_CORES']);
const CONTROL_SLICE_MS = Number(process.env['BENCH_CONTROL_SLICE_MS'] ?? 3);
if (CONTROL_CORES !== undefined && !(CONTROL_CORES > 0 && CONTROL_CORES < 1)) throw new Error(`BENCH_CONTROL_CORES must be a share of a core between 0 and 1, not ${process.env['BENCH_CONTROL_CORES']}`);
if (!(CONTROL_SLICE_MS > 0)) throw new Error(`BENCH_CONTROL_SLICE_MS must be a positive number of milliseconds, not ${process.env['BENCH_CONTROL_SLICE_MS']}`);

type Condition = 'off' | 'on';

/**
 * Sends requests from `jwes` until `until` (performance.now() ms), reporting each answer with the time it was sent (or
 * due); resolves with the time it stopped sending.
 */
type Load = (
  jwes: string[],
  until: number,
  sending: () => void,
  answered: (sentAt: number, ms: number) => void,
  fail: (why: string) => void,
) => Promise<number>;

interface Window {
  condition: Condition;
  /** Latencies counted (after the lead-in), ms. */
  latencies: number[];
  errors: number;
  whys: Map<string, number>;
  /** Seconds of counted load. */
  seconds: number;
  /** Requests of the whole window, lead-in included, and the CPU they cost until the window's backlog was drained. */
  requestsSent: number;
  cpuMs: number;
  /** Of `cpuMs`, this process's main thread's (HTTP, the routes' JS; the load client too with BENCH_CLIENT=main): the rest is PGlite's thread, PostgreSQL, GC and pools. */
  mainCpuMs: number;
  /** The load client's CPU for the window's requests (its own process; 0 with BENCH_CLIENT=main). */
  clientCpuMs: number;
  maxBacklog: number;
  /** Requests sent and not yet answered, at most: far above rate × a normal latency, the vault fell behind in this window. */
  maxInFlight: number;
  /** The control's CPU load, the share of a core it used (an "on" window of a control run). */
  controlCores?: number;
}

/** ABBA: off, on, on, off, off, on, … — a drift of the machine over the run falls on both conditions alike. */
const order = (pairs: number): Condition[] => Array.from({ length: pairs }, (_, i): Condition[] => (i % 2 === 0 ? ['off', 'on'] : ['on', 'off'])).flat();

const p99Of = (values: readonly number[]) => percentile(sortedCopy(values), 99);

/** The pooled p99 ratio on/off with windows resampled (with replacement, per condition): its 5th and 95th percentiles. */
function ratioInterval(off: readonly number[][], on: readonly number[][]): [number, number] {
  let seed = 0x2545f491;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pooled = (windows: readonly number[][]) => {
    const pick: number[] = [];
    for (let i = 0; i < windows.length; i++) for (const ms of windows[Math.floor(random() * windows.length)]!) pick.push(ms);
    return Float64Array.from(pick).sort();
  };
  const ratios: number[] = [];
  for (let i = 0; i < RESAMPLES; i++) {
    const a = pooled(off);
    const b = pooled(on);
    ratios.push(b[Math.floor(0.99 * b.length)]! / a[Math.floor(0.99 * a.length)]!);
  }
  const sorted = sortedCopy(ratios);
  return [percentile(sorted, 5), percentile(sorted, 95)];
}

const postgres = storage === 'postgres' ? await startThrowawayPostgres({ name: 'bench-network-tokens' }) : undefined;
if (postgres !== undefined) process.env['TESSERA_TEST_PG_URL'] = postgres.url;
if (postgres !== undefined && process.env['BENCH_DIAG'] === '1') await withStatementStats(postgres);
// BENCH_DIAG=1 on PGlite: each statement's time on PGlite's thread comes back with its answer (pglite-thread.ts).
if (process.env['BENCH_DIAG'] === '1') process.env['TESSERA_PGLITE_TIMING'] = '1';
const vault = await startTestVault({ storage, name: 'bench-network-tokens' });
// BENCH_VAULTS=2 (PostgreSQL): more vault processes' worth on the same database (in this process, each with its own
// pool, listening connection, job runner and requests in flight), the requests sent to each in turn — production runs
// one vault process per core on PostgreSQL, and each hears every job notification.
const VAULTS = storage === 'postgres' ? Number(process.env['BENCH_VAULTS'] ?? 1) : 1;
const others = await Promise.all(
  Array.from({ length: VAULTS - 1 }, () => startTestVault({ storage, name: 'bench-network-tokens', dataDir: vault.dataDir, databaseUrl: vault.databaseUrl })),
);
try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop' });
  const [jwk] = await fetchJwks(vault.url);
  const urls = [vault, ...others].map((v) => new URL('/v1/tokens', v.url));
  let turn = 0;
  const nextUrl = () => urls[turn++ % urls.length]!;
  // Pending network tokens: those being provisioned in memory (the partial index `network_tokens_in_memory` holds only
  // those) and those a job holds (a job settles its token in the transaction that completes it; the jobs' partial
  // indexes hold only the unfinished ones). `network_tokens where settled_at is null` would read every row of the
  // merchant — a scan growing to tens of thousands of rows, four times a second, on the database thread the measured
  // requests need.
  const backlog = async () =>
    (
      await vault.vault.db.query<{ n: number }>(
        `select (select count(*) from jobs where kind = $1 and state = 'pending') + (select count(*) from jobs where kind = $1 and state = 'running')
                + (select count(*) from network_tokens where provisioning_since is not null and settled_at is null) as n`,
        [PROVISION_JOB],
      )
    ).rows[0]!.n;
  // BENCH_DIAG=1: statements by kind, notifications and (PostgreSQL) CPU by cluster process, per window, per request sent.
  const diag = process.env['BENCH_DIAG'] === '1' ? diagnose([vault, ...others].map((v) => v.vault.db), postgres?.dataDir) : undefined;
  let setting: boolean | undefined;
  const setNetworkTokens = async (on: boolean) => {
    if (setting === on) return;
    await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: on } });
    setting = on;
  };
  const startCpuLoad = async (cores: number) =>
    spawn(process.execPath, [await bundled('bench/cpu-load.ts')], {
      env: { ...process.env, CORES: String(cores), SLICE_MS: String(CONTROL_SLICE_MS) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  /** Stops the control's CPU load; resolves with the share of a core it used. */
  const stopCpuLoad = (load: ChildProcess) =>
    new Promise<number>((resolve, reject) => {
      let out = '';
      load.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      // 'close', not 'exit': its output is read to the end by then.
      load.once('close', () => (out === '' ? reject(new Error('the CPU load exited without its figure')) : resolve(Number(out))));
      load.kill('SIGTERM');
    });
  const drain = async () => {
    const stopped = performance.now();
    while ((await backlog()) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    return (performance.now() - stopped) / 1000;
  };
  const cpuNow = () => processCpuMs() + clusterCpuMs(postgres?.dataDir);
  const mainCpuMs = () => threadCpuMs(process.pid).get(String(process.pid)) ?? 0;
  const summary = { maxBacklog: 0, maxDrain: 0 };
  /** The fastest rate any window has sent at so far, to size the next saturation window's ciphertexts. */
  let fastest = 0;

  /**
   * One window: `load` sends requests for `leadIn + seconds`, reporting each answer with the time it was sent (or due);
   * answers to requests sent in the lead-in are not counted. The window's CPU runs until its backlog is drained.
   */
  const runWindow = async (
    condition: Condition,
    seconds: number,
    jwes: string[],
    load: Load,
  ): Promise<Window> => {
    await setNetworkTokens(CONTROL_CORES === undefined && condition === 'on');
    const control = CONTROL_CORES !== undefined && condition === 'on' ? await startCpuLoad(CONTROL_CORES) : undefined;
    const window: Window = { condition, latencies: [], errors: 0, whys: new Map(), seconds, requestsSent: 0, cpuMs: 0, mainCpuMs: 0, clientCpuMs: 0, maxBacklog: 0, maxInFlight: 0 };
    let inFlight = 0;
    const sampler = setInterval(() => void backlog().then((n) => (window.maxBacklog = Math.max(window.maxBacklog, n))), 250);
    const cpu0 = cpuNow();
    diag?.reset();
    const main0 = mainCpuMs();
    const client0 = clientCpu.ms;
    const started = performance.now();
    const countFrom = started + LEAD_IN_SECONDS * 1000;
    const stopped: number = await load(
      jwes,
      countFrom + seconds * 1000,
      () => (window.maxInFlight = Math.max(window.maxInFlight, ++inFlight)),
      (sentAt, ms) => {
        inFlight--;
        window.requestsSent++;
        if (sentAt >= countFrom) window.latencies.push(ms);
      },
      (why) => {
        window.errors++;
        window.whys.set(why, (window.whys.get(why) ?? 0) + 1);
      },
    );
    clearInterval(sampler);
    if (control !== undefined) window.controlCores = await stopCpuLoad(control);
    window.clientCpuMs = clientCpu.ms - client0;
    window.seconds = Math.min(seconds, Math.max(0, (stopped - countFrom) / 1000));
    fastest = Math.max(fastest, (window.requestsSent * 1000) / (stopped - started));
    const drained = await drain();
    window.cpuMs = cpuNow() - cpu0;
    window.mainCpuMs = mainCpuMs() - main0;
    await diag?.report(condition, window.requestsSent);
    summary.maxBacklog = Math.max(summary.maxBacklog, window.maxBacklog);
    summary.maxDrain = Math.max(summary.maxDrain, drained);
    return window;
  };

  /** Saturation: CONCURRENCY clients, each sending its next request when the last is answered. */
  const closedHere: Load = async (jwes, until, sending, answered, fail) => {
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until && next < jwes.length) {
          const body = JSON.stringify({ card: jwes[next++], reusable: true });
          const t = performance.now();
          sending();
          const status = await post(agent, nextUrl(), merchant.secretKey, body).catch(() => 0);
          answered(t, performance.now() - t);
          if (status !== 201) fail(`HTTP ${status}`);
        }
      }),
    ).finally(() => agent.destroy());
    return performance.now();
  };

  /**
   * The load client (bench/load-client.ts): a process of its own, which formats the window's requests before it
   * starts and writes them to its sockets as bytes; its requests are replayed here in time order when the window's
   * load ends (in flight at most, latencies, errors). BENCH_CLIENT=main: Node's HTTP client on this process's main
   * thread instead, the vault's event loop (every figure in docs/benchmarks.md before 2026-12-04 20:00).
   */
  const inMain = process.env['BENCH_CLIENT'] === 'main';
  const client = inMain
    ? undefined
    : spawn(process.execPath, [await bundled('bench/load-client.ts')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  client?.unref();
  client?.channel?.unref();
  /** The load client's CPU so far (ms; 0 with BENCH_CLIENT=main, where it is the main thread's). */
  const clientCpu = { ms: 0 };
  const inClient = (mode: LoadJob['mode']): Load => async (jwes, until, sending, answered, fail) => {
    const job: LoadJob = {
      targets: urls.map((u) => ({ host: u.hostname, port: Number(u.port) })),
      path: '/v1/tokens',
      secretKey: merchant.secretKey,
      bodies: jwes.map((card) => JSON.stringify({ card, reusable: true })),
      mode,
      until: performance.timeOrigin + until,
    };
    const result = await new Promise<LoadResult>((resolve) => {
      client!.once('message', (message) => resolve(message as LoadResult));
      client!.send(job);
    });
    clientCpu.ms += result.cpuMs;
    const local = (t: number) => t - performance.timeOrigin;
    const events = result.answers.flatMap((a) => [
      { at: a.sent, send: true, a },
      { at: a.due + a.ms, send: false, a },
    ]);
    events.sort((x, y) => x.at - y.at || (x.send ? -1 : 1));
    let last = 0;
    for (const { send, a } of events) {
      if (send) sending();
      else {
        answered(local(a.due), a.ms);
        last = Math.max(last, local(a.due) + a.ms);
        if (a.error !== undefined) fail(a.error);
        else if (a.status !== 201) fail(`HTTP ${a.status}`);
      }
    }
    return mode.kind === 'open' ? until : Math.min(until, last);
  };
  const closed: Load = inMain ? closedHere : inClient({ kind: 'closed', concurrency: CONCURRENCY });
  /** A fixed rate: request i is due at i / rate seconds and sent then, whatever is still unanswered; its latency counts from when it was due. */
  const open = (rate: number): Load => (inMain ? openHere(rate) : inClient({ kind: 'open', rate, sockets: OPEN_SOCKETS }));
  const openHere = (rate: number): Load => async (jwes, until, sending, answered, fail) => {
    const agent = new Agent({ keepAlive: true, maxSockets: OPEN_SOCKETS });
    await paced(rate, (start) => Math.min(jwes.length, Math.floor(((until - start) * rate) / 1000)), (i, scheduled) => {
      sending();
      return post(agent, nextUrl(), merchant.secretKey, JSON.stringify({ card: jwes[i], reusable: true })).then(
        (status) => {
          answered(scheduled, performance.now() - scheduled);
          if (status !== 201) fail(`HTTP ${status}`);
        },
        (error: unknown) => {
          answered(scheduled, performance.now() - scheduled);
          fail(error instanceof Error ? error.message : String(error));
        },
      );
    });
    agent.destroy();
    return until;
  };

  /** Windows in ABBA order, each condition `windows` times; prints each window and the pooled comparison. */
  const compare = async (label: string, windows: number, seconds: number, perWindow: () => number, load: Load) => {
    const done: Window[] = [];
    for (const [i, condition] of order(windows).entries()) {
      const jwes = await makeCiphertexts(jwk!, perWindow());
      const w = await runWindow(condition, seconds, jwes, load);
      done.push(w);
      const sorted = sortedCopy(w.latencies);
      console.log(
        `  window ${String(i + 1).padStart(2)} ${condition.padEnd(3)}: ${w.latencies.length} counted in ${w.seconds.toFixed(1)} s (${w.requestsSent} sent, ${w.errors} errors` +
          `${w.errors > 0 ? `: ${[...w.whys].map(([why, n]) => `${why} × ${n}`).join(', ')}` : ''}), p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
          `p99 ${percentile(sorted, 99).toFixed(1)} ms, ${(w.cpuMs / w.requestsSent).toFixed(2)} ms CPU a tokenization, in flight at most ${w.maxInFlight}, pending at most ${w.maxBacklog}` +
          (w.controlCores === undefined ? '' : `, the control's load ${w.controlCores.toFixed(3)} of a core`),
      );
    }
    const pooled = (condition: Condition) => {
      const ws = done.filter((w) => w.condition === condition);
      const latencies = sortedCopy(ws.flatMap((w) => w.latencies));
      const sent = ws.reduce((a, w) => a + w.requestsSent, 0);
      const cpu = ws.reduce((a, w) => a + w.cpuMs, 0) / sent;
      const mainCpu = ws.reduce((a, w) => a + w.mainCpuMs, 0) / sent;
      const clientCpuMs = ws.reduce((a, w) => a + w.clientCpuMs, 0) / sent;
      const rate = latencies.length / ws.reduce((a, w) => a + w.seconds, 0);
      const p99s = ws.map((w) => p99Of(w.latencies));
      console.log(
        `  ${condition.padEnd(3)} pooled: ${latencies.length} at ${rate.toFixed(1)}/s, p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
          `p99 ${percentile(latencies, 99).toFixed(1)} ms (windows' p99 ${Math.min(...p99s).toFixed(0)}–${Math.max(...p99s).toFixed(0)} ms), ` +
          `${cpu.toFixed(2)} ms CPU a tokenization (${storage === 'postgres' ? 'vault and PostgreSQL' : 'vault'}, provisioning included; ` +
          `${mainCpu.toFixed(2)} on the main thread, ${(cpu - mainCpu).toFixed(2)} elsewhere), ` +
          (inMain ? '' : `the client ${clientCpuMs.toFixed(3)} ms a request (its own process), `) +
          `errors ${ws.reduce((a, w) => a + w.errors, 0)}`,
      );
      return { ws, rate, cpu, mainCpu, p99: percentile(latencies, 99) };
    };
    const off = pooled('off');
    const on = pooled('on');
    const ratio = on.p99 / off.p99;
    const [low, high] = ratioInterval(
      off.ws.map((w) => w.latencies),
      on.ws.map((w) => w.latencies),
    );
    const limit = 1 + TARGET_P99_RISE / 100;
    // Resampling two windows (or one) gives an interval that says nothing about the spread.
    const verdict =
      CONTROL_CORES !== undefined
        ? 'does not apply (a control run)'
        : windows < MIN_WINDOWS_FOR_VERDICT
          ? `not decided (fewer than ${MIN_WINDOWS_FOR_VERDICT} windows a condition)`
          : high <= limit
            ? 'met'
            : low > limit
              ? 'missed'
              : 'not decided by this run (the interval straddles it)';
    console.log(
      `  ${label} p99 on/off: ${ratio.toFixed(3)} (${((ratio - 1) * 100).toFixed(1)} %; 90 % interval over the windows ${low.toFixed(2)}–${high.toFixed(2)}); ` +
        `target ≤ +${TARGET_P99_RISE} %: ${verdict}; CPU ${CONTROL_CORES === undefined ? 'the setting adds' : 'the vault spends more "on"'} per tokenization: ${(on.cpu - off.cpu).toFixed(2)} ms (${(on.mainCpu - off.mainCpu).toFixed(2)} on the main thread)`,
    );
    return { off, on };
  };

  console.log(`network tokens bench on ${storage}: sandbox latency 50–300 ms; windows in the order off, on, on, off, …, each from an empty backlog, the first ${LEAD_IN_SECONDS} s of each not counted`);
  if (CONTROL_CORES !== undefined) {
    console.log(`control: the setting off in every window; the "on" windows run ${CONTROL_CORES} of a core of unrelated CPU (bench/cpu-load.ts, ${CONTROL_SLICE_MS} ms slices)`);
  }
  let rate = FIXED_RATE ?? NaN;
  if (WARM_UP_SECONDS > 0) await runWindow('on', WARM_UP_SECONDS, await makeCiphertexts(jwk!, Math.ceil((WARM_UP_SECONDS + LEAD_IN_SECONDS) * CLOSED_RATE_FLOOR)), closed);
  if (SECONDS > 0) {
    const seconds = SECONDS / SATURATION_WINDOWS;
    console.log(`saturation (closed loop, ${CONCURRENCY} clients, ${SATURATION_WINDOWS} windows of ${seconds} s a condition):`);
    const perWindow = () => Math.ceil((seconds + LEAD_IN_SECONDS) * Math.max(CLOSED_RATE_FLOOR, CLOSED_RATE_HEADROOM * fastest));
    const { off, on } = await compare('at saturation,', SATURATION_WINDOWS, seconds, perWindow, closed);
    rate = FIXED_RATE ?? RATE_FRACTION * on.rate;
    if (FIXED_RATE === undefined) console.log(`fixed rate: ${(RATE_FRACTION * 100).toFixed(0)} % of the saturation "on" rate, ${((rate / off.rate) * 100).toFixed(0)} % of "off"`);
  } else if (FIXED_RATE === undefined) throw new Error('BENCH_SECONDS=0 (no saturation windows) needs BENCH_RATE');
  console.log(`fixed rate (open loop, ${rate.toFixed(1)}/s${FIXED_RATE === undefined ? '' : ' (BENCH_RATE)'}, ${WINDOWS} windows of ${WINDOW_SECONDS} s a condition):`);
  await compare(`at ${rate.toFixed(1)}/s,`, WINDOWS, WINDOW_SECONDS, () => Math.ceil((WINDOW_SECONDS + LEAD_IN_SECONDS) * rate) + 1, open(rate));
  console.log(`pending network tokens at most ${summary.maxBacklog} (sampled every 250 ms); the slowest drain after a window took ${summary.maxDrain.toFixed(1)} s`);
  const settled = await vault.vault.db.query<{ status: string; n: number }>(
    'select status, count(*)::int as n from network_tokens where merchant_id = $1 group by status order by status',
    [merchant.id],
  );
  console.log(`network tokens: ${settled.rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
  client?.kill();
} finally {
  for (const other of others) await other.close();
  await vault.close();
  await postgres?.destroy();
}
