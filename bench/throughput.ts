/**
 * `npm run bench:throughput`: `POST /v1/tokens` throughput at 32 concurrent
 * clients against a real vault (`npm run vault`'s code: one process on
 * PGlite, and on PostgreSQL `TESSERA_WORKERS=1` unless `--pg-processes` says
 * otherwise: the cluster runs on the same cores, see below), driven by `wrk`,
 * a C load client that costs little CPU, so the figure measures the vault
 * and not the client. Every request carries a distinct card JWE made ahead
 * of the run (a Lua script walks through them: the vault refuses a replayed
 * JWE). In the same run, just before each storage, the single-core rate of a
 * bare jose `compactDecrypt` — the crypto every tokenization must pay, as
 * issue #14 states it — and of the vault's own decrypt (node:crypto, which
 * the vault runs since it stopped decrypting with jose); the jose loop again
 * once the vault has stopped, and the ratio target read against the mean of
 * the two (this machine's speed drifts over minutes); both ratios printed,
 * and the CPU time a tokenization cost over the measured run (the vault's
 * processes, every thread, and on PostgreSQL the cluster's): on a shared
 * machine the steadier figure for comparing two builds.
 *
 * Targets (issue #14): throughput ≥ 1.0 × the jose rate, p99 ≤ 50 ms, zero
 * errors. A miss is printed as such; the run fails (exit 1) on errors only,
 * or on a miss too with `--strict`.
 *
 * `--node-flags=…` passes Node or V8 flags to the vault's processes only
 * (not to this script, whose bare decrypt loop is the yardstick): with
 * `--trace-gc` among them, the collections per tokenization of each isolate
 * over the measured run are printed (one vault process: PGlite); the vault's
 * resident memory after the run is printed always.
 *
 * The measured run follows a warm-up (`--warm-up`, 10 s per vault process)
 * at once: a vault's first seconds of load, and its first after a minute
 * idle, run at about half its rate (docs/benchmarks.md, "A warm-up the
 * measured run follows at once"). Printed besides: the measured run's rate by thirds (a rate still
 * rising says the warm-up was too short) and, on PGlite, the share of the
 * run the vault's main thread and its two busiest other threads were on a
 * core and ready but waiting for one.
 *
 * On PostgreSQL the vault runs one process by default: the throwaway cluster
 * shares the machine's cores with it and with `wrk`, and every tokenization
 * here is one merchant's, so a second process's statements wait for the
 * first's on that merchant's audit chain; one process cost ~0.2 ms less CPU
 * a tokenization, the cluster's half of it, and ran at least as fast
 * (docs/benchmarks.md, "One vault process beside PostgreSQL").
 * `--pg-processes 2` runs one a core.
 *
 *   npm run bench:throughput [-- --seconds 15] [--warm-up 10] [--connections 32] [--only pglite|postgres] [--pg-processes 1] [--strict] [--node-flags="…"]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startVaultProcess } from '../test/support/vault-process.ts';
import { newDataDir } from '../test/support/vault.ts';
import { bareDecryptRate, decryptRates, makeCiphertexts } from './ciphertexts.ts';
import { clusterCpuMs, processTreeCpuMs, processTreePids, reapedChildrenMs, threadSchedMs } from './cpu.ts';
import { residentMb, summarizeGcTrace } from './gc-trace.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    'warm-up': { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
    strict: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    'pg-processes': { type: 'string', default: '1' },
  },
});
const NODE_FLAGS = values['node-flags'].split(/\s+/).filter((flag) => flag !== '');
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
/** Warm-up seconds per vault process: each of PostgreSQL's processes takes half the load, so it takes twice as long to warm. */
const WARMUP_SECONDS = Number(values['warm-up']);
/** Vault processes on PostgreSQL (`TESSERA_WORKERS`). */
const PG_PROCESSES = Number(values['pg-processes']);
if (!Number.isInteger(PG_PROCESSES) || PG_PROCESSES < 1) throw new Error(`--pg-processes must be a whole number ≥ 1, not ${values['pg-processes']}`);
const TARGET_RATIO = 1.0;
const TARGET_P99_MS = 50;

/**
 * wrk's Lua: every request formatted once, before the run, from the file's bodies; `request` hands out the next one,
 * so the client's CPU a request is wrk's own (its socket calls and parser), not a Lua string build each time.
 * `done` prints what the run counted as one JSON line.
 */
const LUA = `
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_SECRET_KEY") }
local formatted = {}
-- In init, not at load: wrk sets the Host header (wrk.format's) just before it calls init.
init = function(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do formatted[#formatted + 1] = wrk.format("POST", "/v1/tokens", headers, line) end
end
local i = 0
request = function()
  i = i + 1
  -- Past the end a body is sent again: the vault refuses the replay, and the run shows it as errors.
  if i > #formatted then i = 1 end
  return formatted[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

interface WrkResult {
  requests: number;
  duration_us: number;
  status: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  /** wrk's own CPU over its run, ms (this process's reaped children's time: wrk is the only child that exits then). */
  cpu_ms: number;
}

/** wrk on the PATH, installed from Debian when missing and we are root; else a clear message and exit 2. */
function ensureWrk(): string {
  const found = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim();
  if (found !== '') return found;
  if (process.getuid?.() !== 0) {
    console.error('wrk is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y wrk) and run this again.');
    process.exit(2);
  }
  console.log('wrk is missing: apt-get install -y wrk');
  execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim();
}

/** Writes the request bodies for one wrk run (a JWE each, read by the Lua script) to a file of their own. */
function writeBodies(dir: string, name: string, bodies: string[]): string {
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, bodies.map((card) => JSON.stringify({ card })).join('\n') + '\n', { mode: 0o600 });
  return file;
}

/** One wrk run over its own bodies (a file from `writeBodies`, removed after); wrk on one thread, the lightest client it can be. */
function runWrk(wrk: string, url: string, secretKey: string, bodiesFile: string, seconds: number, dir: string): Promise<WrkResult> {
  const script = join(dir, 'tokenize.lua');
  writeFileSync(script, LUA);
  const reaped = () => reapedChildrenMs(readFileSync('/proc/self/stat', 'utf8'));
  const reapedBefore = reaped();
  return new Promise((resolve, reject) => {
    const child = spawn(wrk, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-s', script, url], {
      env: { ...process.env, BENCH_BODIES: bodiesFile, BENCH_SECRET_KEY: secretKey },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      rmSync(bodiesFile, { force: true });
      const line = output.split('\n').find((text) => text.startsWith('WRK_RESULT '));
      if (code !== 0 || line === undefined) reject(new Error(`wrk exited with ${code}:\n${output}`));
      else resolve({ ...(JSON.parse(line.slice('WRK_RESULT '.length)) as Omit<WrkResult, 'cpu_ms'>), cpu_ms: reaped() - reapedBefore });
    });
  });
}

interface Row {
  storage: string;
  processes: number;
  /** jose's bare compactDecrypt a second on one core, measured just before the vault started and again after it stopped. */
  joseBefore: number;
  joseAfter: number;
  ownDecryptRate: number;
  throughput: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** CPU per tokenization, ms: the vault's processes (every thread), and on PostgreSQL the cluster's. */
  cpuVault: number;
  cpuCluster: number;
}

/** The yardstick of the ratio target: the mean of the jose loops before and after the run. */
const joseRate = (row: Row) => (row.joseBefore + row.joseAfter) / 2;

/**
 * The main thread's and the two busiest other threads' time on a core and waiting in the run queue, as shares of
 * the run: a thread on a core plus waiting for one near 100 % is the one the rate is waiting for.
 */
function schedShares(before: ReturnType<typeof threadSchedMs>, after: ReturnType<typeof threadSchedMs>, pid: number, runMs: number): string {
  const share = (tid: string) => {
    const [a, b] = [after.get(tid), before.get(tid) ?? { running: 0, waiting: 0 }];
    return a === undefined ? { running: 0, waiting: 0 } : { running: (a.running - b.running) / runMs, waiting: (a.waiting - b.waiting) / runMs };
  };
  const percent = (x: number) => `${(x * 100).toFixed(0)} %`;
  const others = [...after.keys()].filter((tid) => tid !== String(pid)).sort((x, y) => share(y).running - share(x).running);
  return [String(pid), ...others.slice(0, 2)]
    .map((tid, i) => `${i === 0 ? 'main' : `thread ${tid}`} ${percent(share(tid).running)} / ${percent(share(tid).waiting)}`)
    .join(', ');
}

/** Tokenizations a second in each third of the measured run, from the access log's lines: a rate still rising says the warm-up was too short. */
function ratesByThirds(log: string): string {
  const times = log
    .split('\n')
    .filter((line) => line.includes('"path":"/v1/tokens"'))
    .map((line) => Date.parse((JSON.parse(line) as { time: string }).time));
  if (times.length < 3) return '—';
  const [first, last] = [times[0]!, times.at(-1)!];
  const third = (last - first) / 3;
  const counts = [0, 0, 0];
  for (const time of times) counts[Math.min(2, Math.floor((time - first) / third))]! += 1;
  return counts.map((count) => `${((count * 1000) / third).toFixed(0)}/s`).join(', ');
}

async function benchStorage(wrk: string, storage: 'pglite' | 'postgres', dir: string, cluster?: ThrowawayPostgres): Promise<Row> {
  const { jose: joseBefore, own: ownDecryptRate } = await decryptRates(`${storage}: `);
  const dataDir = await newDataDir(storage, 'bench-throughput');
  const processes = storage === 'postgres' ? PG_PROCESSES : 1;
  const env: Record<string, string> = { TESSERA_LOG_LEVEL: 'info' };
  if (cluster !== undefined) {
    env['DATABASE_URL'] = await cluster.createDatabase();
    env['TESSERA_WORKERS'] = String(processes);
  }
  const vault = await startVaultProcess({ dataDir, env, startTimeoutMs: 300_000, nodeFlags: NODE_FLAGS });
  let row: Row;
  try {
    const url = vault.url.replace('localhost', '127.0.0.1');
    const { secret_key: secretKey } = JSON.parse(readFileSync(join(dataDir, 'demo-merchant.json'), 'utf8')) as { secret_key: string };
    const [jwk] = await fetchJwks(url);
    // Distinct bodies for 3 × the jose rate, more than the vault's CPU a tokenization lets it reach on these cores (past
    // the end wrk sends them again, and the vault's refusals of the replays show as errors).
    const perSecond = Math.ceil(joseBefore * 3);
    // Both runs' bodies are made first, so the measured run follows the warm-up at once: made in between (a minute
    // or more), they left the vault idle, and it ran its first seconds of load again at half its rate.
    const warmUpSeconds = WARMUP_SECONDS * processes;
    const warmBodies = writeBodies(dir, `${storage}-warm-up`, await makeCiphertexts(jwk!, perSecond * warmUpSeconds));
    const bodies = writeBodies(dir, `${storage}-measured`, await makeCiphertexts(jwk!, perSecond * SECONDS));
    const warm = await runWrk(wrk, url, secretKey, warmBodies, warmUpSeconds, dir);
    console.log(`${storage}: warm-up ${warm.requests} requests in ${warmUpSeconds} s, ${(warm.requests / warmUpSeconds).toFixed(0)}/s`);
    // CPU time over the measured run: what a tokenization costs, which a shared machine inflates far less than wall rates.
    const pid = vault.child.pid!;
    const logFile = join(dataDir, 'vault.log');
    const cpu = () => ({ tree: processTreeCpuMs(pid), sched: threadSchedMs(pid), cluster: clusterCpuMs(cluster?.dataDir), logBytes: statSync(logFile).size });
    const before = cpu();
    const result = await runWrk(wrk, url, secretKey, bodies, SECONDS, dir);
    const after = cpu();
    const memory = processTreePids(pid).map(residentMb);
    const perToken = (ms: number) => ms / result.requests;
    const threadMs = (tid: string) => perToken((after.sched.get(tid)?.running ?? 0) - (before.sched.get(tid)?.running ?? 0));
    const busiest = [...after.sched.keys()].filter((tid) => tid !== String(pid)).map(threadMs).sort((a, b) => b - a)[0] ?? 0;
    const errors = result.status + result.connect + result.read + result.write + result.timeout;
    row = {
      storage,
      processes,
      joseBefore,
      joseAfter: NaN,
      ownDecryptRate,
      throughput: result.requests / (result.duration_us / 1e6),
      p50: result.p50_us / 1000,
      p99: result.p99_us / 1000,
      errors,
      requests: result.requests,
      cpuVault: perToken(after.tree - before.tree),
      cpuCluster: perToken(after.cluster - before.cluster),
    };
    console.log(
      `${storage}: c=${CONNECTIONS} ${row.throughput.toFixed(0)} tokens/s, p50 ${row.p50.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, ` +
        `errors ${errors}/${row.requests} (status ${result.status}, connect ${result.connect}, read ${result.read}, write ${result.write}, timeout ${result.timeout}), ` +
        `÷ own decrypt rate ${(row.throughput / ownDecryptRate).toFixed(2)}`,
    );
    console.log(
      `${storage}: CPU per tokenization ${row.cpuVault.toFixed(2)} ms in the vault ` +
        // With workers, the first process only forks and watches them: its threads say nothing.
        (processes === 1
          ? `(main thread ${threadMs(String(pid)).toFixed(2)}, busiest other thread ${busiest.toFixed(2)})`
          : `(${processes} processes)`) +
        (cluster === undefined ? '' : ` + ${row.cpuCluster.toFixed(2)} ms in PostgreSQL`) +
        `; the client (wrk) ${perToken(result.cpu_ms).toFixed(3)} ms a request`,
    );
    if (processes === 1) console.log(`${storage}: share of the run each thread was on a core / ready and waiting for one: ${schedShares(before.sched, after.sched, pid, result.duration_us / 1000)}`);
    console.log(
      `${storage}: vault resident memory after the run ${memory.map(({ rss }) => rss.toFixed(0)).join(' + ')} MB` +
        (NODE_FLAGS.length > 0 ? `; node flags: ${NODE_FLAGS.join(' ')}` : ''),
    );
    const measuredLog = readFileSync(logFile).subarray(before.logBytes, after.logBytes).toString('utf8');
    console.log(`${storage}: the measured run's rate by thirds (the vault's access log): ${ratesByThirds(measuredLog)}`);
    const gc = summarizeGcTrace(measuredLog, result.requests);
    if (gc !== '') console.log(`${storage}: V8 collections per tokenization, by isolate:\n    ${gc}`);
  } finally {
    await vault.kill('SIGTERM');
  }
  // The yardstick again, the vault gone: this machine's speed drifts over minutes, so the ratio is taken against the
  // mean of the loops before and after the run.
  row.joseAfter = await bareDecryptRate();
  console.log(
    `${storage}: jose compactDecrypt after the run ${row.joseAfter.toFixed(0)}/s (before ${row.joseBefore.toFixed(0)}/s); ` +
      `÷ their mean ${(row.throughput / joseRate(row)).toFixed(2)}`,
  );
  return row;
}

const wrk = ensureWrk();
console.log(`${spawnSync(wrk, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]}; ${availableParallelism()} cores; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
const dir = mkdtempSync(join(tmpdir(), 'tessera-throughput-'));
const rows: Row[] = [];
try {
  if (values.only !== 'postgres') rows.push(await benchStorage(wrk, 'pglite', dir));
  if (values.only !== 'pglite') {
    const cluster = await startThrowawayPostgres({ name: 'bench-throughput' });
    try {
      rows.push(await benchStorage(wrk, 'postgres', dir, cluster));
    } finally {
      await cluster.destroy();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`\nwrk -t1 -c${CONNECTIONS} -d${SECONDS}s, distinct pre-encrypted bodies; load average after: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
console.log('| storage | vault processes | bare jose decrypt /s (before, after) | own decrypt /s | tokens/s | ÷ jose rate | ÷ own rate | p50 ms | p99 ms | CPU ms a token | errors | targets |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
let missed = false;
let failed = false;
for (const row of rows) {
  const ratio = row.throughput / joseRate(row);
  const misses = [
    ...(ratio < TARGET_RATIO ? [`ratio < ${TARGET_RATIO}`] : []),
    ...(row.p99 > TARGET_P99_MS ? [`p99 > ${TARGET_P99_MS} ms`] : []),
    ...(row.errors > 0 ? ['errors'] : []),
  ];
  missed ||= misses.length > 0;
  failed ||= row.errors > 0;
  console.log(
    `| ${row.storage === 'pglite' ? 'PGlite' : 'PostgreSQL'} | ${row.processes} | ${joseRate(row).toFixed(0)} (${row.joseBefore.toFixed(0)}, ${row.joseAfter.toFixed(0)}) | ${row.ownDecryptRate.toFixed(0)} | ${row.throughput.toFixed(0)} | ${ratio.toFixed(2)} | ` +
      `${(row.throughput / row.ownDecryptRate).toFixed(2)} | ` +
      `${row.p50.toFixed(1)} | ${row.p99.toFixed(1)} | ${(row.cpuVault + row.cpuCluster).toFixed(2)} | ${row.errors}/${row.requests} | ${misses.length === 0 ? 'met' : `missed: ${misses.join(', ')}`} |`,
  );
}
if (failed || (values.strict && missed)) process.exit(1);
