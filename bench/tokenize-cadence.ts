/**
 * `npm run bench:tokenize-cadence`: the vault's time and CPU for the card
 * fields' `POST /v1/tokens` by how the request is sent — with the headers a
 * Node client sends or with the ones Chromium sends from the fields frame
 * (user agent, client hints, `Origin`, `Sec-Fetch-*`, `Accept-Language`…),
 * and one after another or after the vault has sat idle for a while, as it
 * has when one shopper types a card between the session and the token.
 *
 * Why it exists (2026-12-02, docs/benchmarks.md, "Widget"): the vault's
 * access-log time for the fields' request is 8.8–12.5 ms in `bench:widget`
 * against 6.8–7.0 ms in `bench:tokenize-path`, and this tells the headers
 * and the cadence apart. One vault process (PGlite, warmed with 100
 * tokenizations), one keep-alive connection, the modes taken in turn so that
 * the machine's load falls on all of them alike. Per mode: the client's
 * median, the access log's median, and the vault's CPU per request from
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds on a CPU and waiting to get
 * one), for the main thread, the busiest other thread (PGlite's) and the rest.
 *
 *   npm run bench:tokenize-cadence [-- --rounds 30] [--modes 'node|chromium|chromium, idle 700|node, idle 1500']
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMerchant, openSession, uniqueLetters } from '../test/support/api.ts';
import { fetchJwks } from '../test/support/cards.ts';
import { newDataDir } from '../test/support/vault.ts';
import { makeCiphertexts } from './ciphertexts.ts';
import { median } from './stats.ts';
import { startBenchVault } from './widget-common.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '30' },
    modes: { type: 'string', default: 'node|chromium|chromium, idle 700|node, idle 700|node, idle 1500' },
  },
});
const ROUNDS = Number(values.rounds);
/** Each mode: `node` or `chromium` headers, and optionally `, idle <ms>` of quiet before the request. */
const MODES = values.modes.split('|').map((name) => ({ name, chromium: name.startsWith('chromium'), idleMs: Number(/idle (\d+)/.exec(name)?.[1] ?? 0) }));
const WARM_UP = 100;
/** Tokenizations a session may make (SESSION_TOKEN_LIMIT). */
const PER_SESSION = 20;

/** The headers Chromium 150 sent with the fields' `POST /v1/tokens` (read with Playwright's `request.allHeaders()`), no cookie among them. */
const chromiumHeaders = (host: string): Record<string, string> => ({
  host,
  connection: 'keep-alive',
  'sec-ch-ua-platform': '"Linux"',
  'sec-ch-ua': '"Not;A=Brand";v="8", "Chromium";v="150"',
  'sec-ch-ua-mobile': '?0',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/150.0.0.0 Safari/537.36',
  accept: '*/*',
  origin: `http://${host}`,
  'sec-fetch-site': 'same-origin',
  'sec-fetch-mode': 'cors',
  'sec-fetch-dest': 'empty',
  'accept-encoding': 'gzip, deflate, br, zstd',
  'accept-language': 'en-US,en;q=0.9',
});

/** Nanoseconds on a CPU per thread of `pid`, and waiting on a run queue (all threads). */
function schedstat(pid: number): { threads: Map<string, number>; waitNs: number } {
  const threads = new Map<string, number>();
  let waitNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      threads.set(tid, Number(run));
      waitNs += Number(wait);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return { threads, waitNs };
}

interface Sample {
  clientMs: number;
  requestId: string;
  mainMs: number;
  otherMs: Map<string, number>;
  waitMs: number;
}

const adminKey = `admin_${randomBytes(18).toString('hex')}`;
const dataDir = await newDataDir('pglite', 'bench-tokenize-cadence');
let stopVault: (() => Promise<void>) | undefined;
try {
  // The same vault as bench:widget's.
  const vault = await startBenchVault(dataDir, adminKey);
  stopVault = () => vault.kill('SIGTERM');
  console.log(`load average at the start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const { port } = new URL(vault.url);
  const pid = vault.child.pid!;
  const merchant = await createMerchant({ url: vault.url, adminKey }, { name: 'Bench Shop', allowedOrigins: ['http://localhost:1'] });
  const [jwk] = await fetchJwks(vault.url);
  const cards = await makeCiphertexts(jwk!, WARM_UP + ROUNDS * MODES.length);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const chromium = chromiumHeaders(`localhost:${port}`);

  const post = (body: string, headers: Record<string, string>) =>
    new Promise<{ status: number; requestId: string; ms: number }>((resolve, reject) => {
      const started = performance.now();
      const sent = request(
        { host: '127.0.0.1', port, path: '/v1/tokens', method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, requestId: String(response.headers['request-id']), ms: performance.now() - started }));
        },
      );
      sent.on('error', reject);
      sent.end(body);
    });

  let session = '';
  let sessionUses = PER_SESSION;
  let made = 0;
  // Opened before any quiet, never between it and the measured request (which it would warm).
  const sessionForNext = async () => {
    if (sessionUses < PER_SESSION) return;
    session = await openSession(vault.url, merchant);
    sessionUses = 0;
  };
  const tokenize = async (headers: Record<string, string>) => {
    sessionUses++;
    const body = JSON.stringify({ key: merchant.publishableKey, session, card: cards[made++], reusable: false });
    const answer = await post(body, { ...headers, 'idempotency-key': uniqueLetters(24) });
    if (answer.status !== 201) throw new Error(`POST /v1/tokens answered ${answer.status}`);
    return answer;
  };

  for (let i = 0; i < WARM_UP; i++) {
    await sessionForNext();
    await tokenize({});
  }
  const samples = new Map<string, Sample[]>(MODES.map((mode) => [mode.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      await sessionForNext();
      if (mode.idleMs > 0) await new Promise((resolve) => setTimeout(resolve, mode.idleMs));
      const before = schedstat(pid);
      const answer = await tokenize(mode.chromium ? chromium : {});
      const after = schedstat(pid);
      const spent = (tid: string) => ((after.threads.get(tid) ?? 0) - (before.threads.get(tid) ?? 0)) / 1e6;
      samples.get(mode.name)!.push({
        clientMs: answer.ms,
        requestId: answer.requestId,
        mainMs: spent(String(pid)),
        otherMs: new Map([...after.threads.keys()].filter((tid) => tid !== String(pid)).map((tid) => [tid, spent(tid)])),
        waitMs: (after.waitNs - before.waitNs) / 1e6,
      });
    }
  }
  await vault.kill('SIGTERM');

  const logged = new Map<string, number>();
  for (const line of readFileSync(join(dataDir, 'vault.log'), 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; request_id?: string; ms?: number };
    if (entry.msg === 'request' && entry.request_id !== undefined && entry.ms !== undefined) logged.set(entry.request_id, entry.ms);
  }
  // PGlite's thread is the busiest one after the main thread, over the whole run.
  const totals = new Map<string, number>();
  for (const sample of [...samples.values()].flat()) for (const [tid, ms] of sample.otherMs) totals.set(tid, (totals.get(tid) ?? 0) + ms);
  const pglite = [...totals].sort((a, b) => b[1] - a[1])[0]?.[0];
  const fmt = (ms: number) => ms.toFixed(1);
  const mean = (list: number[]) => list.reduce((sum, x) => sum + x, 0) / list.length;
  console.log(`\nOne card-fields tokenization at a time, ${ROUNDS} per mode, modes in turn; vault warmed with ${WARM_UP} (PGlite).\n`);
  console.log('| mode | client median ms | vault access log median ms | vault CPU ms, median (main / PGlite thread / others, means) | vault threads waiting for a CPU, median ms |');
  console.log('|---|---|---|---|---|');
  for (const [name, list] of samples) {
    const cpu = list.map((s) => s.mainMs + [...s.otherMs.values()].reduce((sum, ms) => sum + ms, 0));
    const db = list.map((s) => s.otherMs.get(pglite ?? '') ?? 0);
    const others = list.map((s) => [...s.otherMs].filter(([tid]) => tid !== pglite).reduce((sum, [, ms]) => sum + ms, 0));
    console.log(
      `| ${name} | ${fmt(median(list.map((s) => s.clientMs)))} | ${fmt(median(list.map((s) => logged.get(s.requestId) ?? Number.NaN)))} | ` +
        `${fmt(median(cpu))} (${fmt(mean(list.map((s) => s.mainMs)))} / ${fmt(mean(db))} / ${fmt(mean(others))}) | ${fmt(median(list.map((s) => s.waitMs)))} |`,
    );
  }
  console.log(`\nload average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} finally {
  await stopVault?.();
  rmSync(dataDir, { recursive: true, force: true });
}
