/**
 * `npm run bench:tokenize-path`: where one tokenization's time and CPU go,
 * on an otherwise idle vault. One client sends `POST /v1/tokens` one after
 * another (nothing concurrent), as the card fields send it — publishable
 * key, session, `Idempotency-Key` — or, with `--kind server`, as
 * `bench:throughput`'s merchant server sends it. The vault is `npm run
 * vault`'s code in a process of its own (on PostgreSQL one worker, so its
 * threads are the vault's).
 *
 * Printed per storage:
 * - the vault's own time per request (its access log's `ms`), by how many
 *   tokenizations the process had made before: a fresh process runs its
 *   JavaScript and PGlite's WebAssembly unoptimised, and `bench:widget`
 *   measures its tokenizations early in a vault's life;
 * - CPU per tokenization, per thread of the vault process (from
 *   /proc/<pid>/task, clock ticks over the whole counted run: the main
 *   thread, PGlite's thread, the decrypt pool, V8's helper threads for GC
 *   and compiling, libuv's pool for crypto) and, on PostgreSQL, of the
 *   cluster's processes — CPU time, which other load on the machine
 *   inflates far less than wall time.
 *
 * - with `--node-flags=…` (Node or V8 flags for the vault process only, e.g.
 *   "--max-semi-space-size=32 --trace-gc"): with `--trace-gc` among them,
 *   the collections per tokenization of each of the vault's isolates over
 *   the counted run; always the vault's resident memory after it.
 *
 *   npm run bench:tokenize-path [-- --requests 600] [--kind fields|server] [--only pglite|postgres] [--node-flags="…"] [--threads] [--keep-log=FILE]
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMerchant, openSession, uniqueLetters, type TestMerchant } from '../test/support/api.ts';
import { fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startVaultProcess } from '../test/support/vault-process.ts';
import { newDataDir } from '../test/support/vault.ts';
import { makeCiphertexts } from './ciphertexts.ts';
import { clusterCpuMs, threadCpuMs } from './cpu.ts';
import { residentMb, summarizeGcTrace } from './gc-trace.ts';
import { median, percentile, sortedCopy } from './stats.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '600' },
    kind: { type: 'string', default: 'fields' },
    only: { type: 'string' },
    'node-flags': { type: 'string', default: '' },
    threads: { type: 'boolean', default: false },
    'keep-log': { type: 'string' },
  },
});
const NODE_FLAGS = values['node-flags'].split(/\s+/).filter((flag) => flag !== '');
const REQUESTS = Number(values.requests);
const FIELDS = values.kind !== 'server';
/** Tokenizations a session may make (SESSION_TOKEN_LIMIT): the client opens a new one before each twentieth. */
const PER_SESSION = 20;
/** The vault's life in tokenizations, bucketed: the access log's medians are printed per bucket. */
const BUCKETS: [number, number][] = [
  [1, 10],
  [11, 30],
  [31, 100],
  [101, 300],
  [301, Infinity],
];
/**
 * CPU per tokenization of the main thread, of the busiest other thread (on
 * PGlite, the database's thread) and of all the others together (V8's GC
 * and compiler threads, libuv's pool, the decrypt pool). Linux names them
 * all `node`; the main thread's id is the process id.
 */
function describeThreads(pid: number, before: Map<string, number>, after: Map<string, number>, requests: number): string {
  const ms = (tid: string) => ((after.get(tid) ?? 0) - (before.get(tid) ?? 0)) / requests;
  const others = [...after.keys()].filter((tid) => tid !== String(pid)).sort((a, b) => ms(b) - ms(a));
  const rest = others.slice(1).reduce((sum, tid) => sum + ms(tid), 0);
  return `main thread ${ms(String(pid)).toFixed(2)}, busiest other thread ${others.length > 0 ? ms(others[0]!).toFixed(2) : '0'}, all others ${rest.toFixed(2)}`;
}

async function benchStorage(storage: 'pglite' | 'postgres', cluster?: ThrowawayPostgres): Promise<void> {
  const adminKey = `admin_${randomBytes(18).toString('hex')}`;
  const dataDir = await newDataDir(storage, 'bench-tokenize-path');
  const env: Record<string, string> = {
    TESSERA_ADMIN_KEY: adminKey,
    TESSERA_LOG_LEVEL: 'info',
    // One client on 127.0.0.1 makes every request: the per-IP and per-key limits are not what is measured.
    TESSERA_RATE_LIMIT_PER_IP: '1000000',
    TESSERA_RATE_LIMIT_PER_KEY: '1000000',
  };
  if (cluster !== undefined) {
    env['DATABASE_URL'] = await cluster.createDatabase();
    env['TESSERA_WORKERS'] = '1';
  }
  const vault = await startVaultProcess({ dataDir, env, startTimeoutMs: 300_000, nodeFlags: NODE_FLAGS });
  let stopped: Promise<void> | undefined;
  // Once: the access log is read after the vault has flushed it and exited.
  const stop = () => (stopped ??= vault.kill('SIGTERM'));
  try {
    const url = vault.url.replace('localhost', '127.0.0.1');
    const { port } = new URL(url);
    const pid = vault.child.pid!;
    const merchant: TestMerchant = await createMerchant({ url, adminKey }, { name: 'Bench Shop', allowedOrigins: ['https://shop.example'] });
    const [jwk] = await fetchJwks(url);
    const cards = await makeCiphertexts(jwk!, REQUESTS);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = (body: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const sent = request(
          { host: '127.0.0.1', port, path: '/v1/tokens', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
          (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          },
        );
        sent.on('error', reject);
        sent.end(body);
      });

    let session = '';
    let failed = 0;
    const logFile = join(dataDir, 'vault.log');
    const tick = () => ({ threads: threadCpuMs(pid), cluster: clusterCpuMs(cluster?.dataDir), logBytes: statSync(logFile).size });
    const before = tick();
    for (let i = 0; i < REQUESTS; i++) {
      // Sessions are opened inside the counted run (one request in twenty): the fields open theirs while the shopper types.
      if (FIELDS && i % PER_SESSION === 0) session = await openSession(url, merchant);
      const status = FIELDS
        ? await post(JSON.stringify({ key: merchant.publishableKey, session, card: cards[i], reusable: false }), { 'idempotency-key': uniqueLetters(24) })
        : await post(JSON.stringify({ card: cards[i] }), { authorization: `Bearer ${merchant.secretKey}` });
      if (status !== 201) failed++;
    }
    const after = tick();
    const memory = residentMb(pid);

    await stop();
    const log = readFileSync(logFile);
    if (values['keep-log'] !== undefined) writeFileSync(`${values['keep-log']}.${storage}`, log);
    const gc = summarizeGcTrace(log.subarray(before.logBytes, after.logBytes).toString('utf8'), REQUESTS);
    const vaultMs = log
      .toString('utf8')
      .split('\n')
      .flatMap((line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; method?: string; path?: string; ms?: number };
          return entry.msg === 'request' && entry.method === 'POST' && entry.path === '/v1/tokens' ? [entry.ms!] : [];
        } catch {
          return [];
        }
      });
    const buckets = BUCKETS.filter(([from]) => from <= vaultMs.length).map(([from, to]) => {
      const slice = sortedCopy(vaultMs.slice(from - 1, Math.min(to, vaultMs.length)));
      return `${from}–${to === Infinity ? vaultMs.length : Math.min(to, vaultMs.length)}: ${median(slice).toFixed(1)}`;
    });
    const all = sortedCopy(vaultMs);
    const threads = describeThreads(pid, before.threads, after.threads, REQUESTS);
    const vaultCpu = [...after.threads].reduce((sum, [tid, ms]) => sum + ms - (before.threads.get(tid) ?? 0), 0);
    const perRequest = (ms: number) => (ms / REQUESTS).toFixed(2);
    console.log(`\n${storage === 'pglite' ? 'PGlite' : 'PostgreSQL'}, ${FIELDS ? 'card fields (session, Idempotency-Key)' : 'merchant server'}, ${REQUESTS} tokenizations one at a time, ${failed} not 201`);
    console.log(`  vault's ms (access log), median by tokenizations made: ${buckets.join(' | ')}; all: median ${median(all).toFixed(1)}, p90 ${percentile(all, 90).toFixed(1)}`);
    console.log(`  vault process CPU per tokenization (ms): ${perRequest(vaultCpu)} = ${threads}`);
    if (cluster !== undefined) console.log(`  PostgreSQL cluster CPU per tokenization (ms): ${perRequest(after.cluster - before.cluster)}`);
    console.log(`  vault process resident memory after the run: ${memory.rss.toFixed(0)} MB (peak ${memory.peak.toFixed(0)} MB)${NODE_FLAGS.length > 0 ? `; node flags: ${NODE_FLAGS.join(' ')}` : ''}`);
    if (values.threads) {
      // By thread id, in the order they were started: main, V8's platform workers (GC, compiler), then libuv's, the workers'.
      const each = [...after.threads.keys()].sort((a, b) => Number(a) - Number(b)).map((tid) => `${Number(tid) - pid}: ${perRequest((after.threads.get(tid) ?? 0) - (before.threads.get(tid) ?? 0))}`);
      console.log(`  CPU per tokenization by thread (id − pid: ms): ${each.join(', ')}`);
    }
    if (gc !== '') console.log(`  V8 collections per tokenization, by isolate:\n    ${gc}`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

console.log(`load average at the start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
if (values.only !== 'postgres') await benchStorage('pglite');
if (values.only !== 'pglite') {
  const cluster = await startThrowawayPostgres({ name: 'bench-tokenize-path' });
  try {
    await benchStorage('postgres', cluster);
  } finally {
    await cluster.destroy();
  }
}
console.log(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
