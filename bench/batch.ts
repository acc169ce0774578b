/**
 * `npm run bench:batch`: async batch tokenization and webhook delivery, on
 * PGlite and on PostgreSQL (a throwaway cluster).
 *
 * 1. Batch: a real vault process (`npm run vault`'s code), after a 50-item
 *    batch that starts its decrypt threads and a warm-up batch of
 *    `BENCH_BATCH_WARMUP` (2,000) items — a vault in service has run batches
 *    before: V8 has compiled PGlite's WebAssembly and the batch path, which
 *    a process's first large batch pays for (its rate is printed on its own
 *    line) — takes a batch of
 *    `BENCH_BATCH_ITEMS` (10,000) distinct cards alone; its throughput is
 *    the items over the vault's own `created_at` → `completed_at`, set
 *    against the single-core rate of a bare jose `compactDecrypt` loop (the
 *    issue's target) and of the vault's own decrypt (node:crypto, what the
 *    vault runs), both measured in the same run, just before. Then one merchant server
 *    tokenizes one card at a time (`POST /v1/tokens`), on the idle vault and
 *    beside a second such batch; the two p99s are set against each other.
 * 2. Webhooks: a vault in this process sends to an http receiver in a child
 *    process on 127.0.0.1 (`TESSERA_WEBHOOK_ALLOW_LOCAL=1`). Sustained rate:
 *    `BENCH_WEBHOOK_EVENTS` (5,000) `token.created` events committed (a
 *    thousand a statement) while the job runner is stopped, then the runner started and the time to
 *    the last delivery. Latency: events committed one at a time, 100 a
 *    second, from the commit (the insert's return) to the receiver's arrival
 *    time, p50 and p95.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompactEncrypt, importJWK, type JWK } from 'jose';
import { api, createMerchant } from '../test/support/api.ts';
import { cardPlaintext, fetchJwks, randomCard } from '../test/support/cards.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startVaultProcess } from '../test/support/vault-process.ts';
import { newDataDir, startTestVault } from '../test/support/vault.ts';
import { decryptRates } from './ciphertexts.ts';
import { clusterCpuMs, processTreeCpuMs, threadCpuMs } from './cpu.ts';
import { post } from './post.ts';

const ITEMS = Number(process.env['BENCH_BATCH_ITEMS'] ?? 10_000);
const WEBHOOK_EVENTS = Number(process.env['BENCH_WEBHOOK_EVENTS'] ?? 5_000);
const WARMUP_ITEMS = Number(process.env['BENCH_BATCH_WARMUP'] ?? 2_000);
const IDLE_PROBES = 300;
const LATENCY_EVENTS = 300;
const DECRYPT_SECONDS = 5;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function makeCiphertexts(jwk: JWK, count: number): Promise<string[]> {
  const key = await importJWK({ ...jwk, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  const out: string[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(cardPlaintext({ number: randomCard(), cvc: '123' }))))
          .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: jwk.kid!, iat: Math.floor(Date.now() / 1000) })
          .encrypt(key);
      }
    }),
  );
  return out;
}

/** One tokenization at a time until `until` says stop (or the cards run out): latencies in ms, and the failures. */
async function probe(baseUrl: string, secretKey: string, cards: string[], until: () => boolean): Promise<{ latencies: number[]; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL('/v1/tokens', baseUrl);
  const latencies: number[] = [];
  let errors = 0;
  try {
    for (const card of cards) {
      if (until()) break;
      const t0 = performance.now();
      const status = await post(agent, url, secretKey, JSON.stringify({ card }));
      latencies.push(performance.now() - t0);
      if (status !== 201) errors++;
    }
  } finally {
    agent.destroy();
  }
  return { latencies, errors };
}

interface BatchFigures {
  storage: string;
  decryptRate: number;
  ownDecryptRate: number;
  acceptMs: number;
  seconds: number;
  throughput: number;
  /** The warm-up batch's rate: a fresh vault's first large batch. */
  freshThroughput: number | undefined;
  /** CPU per item of the batch alone: the vault's processes (on PGlite by thread) and the cluster's. */
  cpu: string;
  /** The second batch's, the one the probes ran beside. */
  probedThroughput: number;
  idle: { p50: number; p99: number; n: number };
  during: { p50: number; p99: number; n: number; errors: number };
}

/** Submits a batch and waits for it; answers the time to its 202 and its own created_at → completed_at. */
async function runBatch(baseUrl: string, secretKey: string, cards: string[]): Promise<{ acceptMs: number; seconds: number }> {
  const body = JSON.stringify({ correlation_id: 'bench', items: cards.map((card, n) => ({ card, reference: `row-${n}` })) });
  const t0 = performance.now();
  const accepted = await fetch(`${baseUrl}/v1/token-batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(120_000),
  });
  const acceptMs = performance.now() - t0;
  if (accepted.status !== 202) throw new Error(`the batch was refused: ${accepted.status} ${await accepted.text()}`);
  let batch = (await accepted.json()) as { id: string; status: string; created_at: string; completed_at: string | null; succeeded: number };
  while (batch.status !== 'completed') {
    await sleep(100);
    batch = (await api(baseUrl, 'GET', `/v1/token-batches/${batch.id}`, { key: secretKey })).body;
  }
  if (batch.succeeded !== cards.length) throw new Error(`only ${batch.succeeded} of ${cards.length} items succeeded`);
  return { acceptMs, seconds: (Date.parse(batch.completed_at!) - Date.parse(batch.created_at)) / 1000 };
}

async function benchBatch(storage: 'pglite' | 'postgres', cluster: ThrowawayPostgres | undefined): Promise<BatchFigures> {
  const { jose: decryptRate, own: ownDecryptRate } = await decryptRates(`${storage}: `);
  const dataDir = await newDataDir(storage, 'bench-batch');
  // info: the process says where it listens at that level.
  const env: Record<string, string> = { TESSERA_LOG_LEVEL: 'info' };
  if (cluster !== undefined) env['DATABASE_URL'] = await cluster.createDatabase();
  const vault = await startVaultProcess({ dataDir, env });
  try {
    const { secret_key: secretKey } = JSON.parse(readFileSync(join(dataDir, 'demo-merchant.json'), 'utf8')) as { secret_key: string };
    const [jwk] = await fetchJwks(vault.url);
    // A small batch first: the decrypt pool's threads start (and load their code) at the first batch.
    await runBatch(vault.url, secretKey, await makeCiphertexts(jwk!, 50));
    // The process's first large batch: its rate, on a fresh vault, is shown apart from the target's.
    const fresh = WARMUP_ITEMS > 0 ? await runBatch(vault.url, secretKey, await makeCiphertexts(jwk!, WARMUP_ITEMS)) : undefined;

    // 1. The batch alone, and the CPU it cost (steadier than its rate on a shared machine).
    const aloneCards = await makeCiphertexts(jwk!, ITEMS);
    const pid = vault.child.pid!;
    const cpuBefore = { vault: processTreeCpuMs(pid), threads: threadCpuMs(pid), cluster: clusterCpuMs(cluster?.dataDir) };
    const alone = await runBatch(vault.url, secretKey, aloneCards);
    const cpu = cpuPerItem(pid, cpuBefore, clusterCpuMs(cluster?.dataDir));
    console.log(`${storage}: ${ITEMS} items in ${alone.seconds.toFixed(1)} s; CPU per item: ${cpu}`);

    // 2. One tokenization at a time, idle and then beside a second batch.
    const probes = await makeCiphertexts(jwk!, IDLE_PROBES + 50 + 4_000);
    await probe(vault.url, secretKey, probes.splice(0, 50), () => false);
    const idle = await probe(vault.url, secretKey, probes.splice(0, IDLE_PROBES), () => false);
    const cards = await makeCiphertexts(jwk!, ITEMS);
    let done = false;
    const batch = runBatch(vault.url, secretKey, cards).finally(() => (done = true));
    // The probes start once the batch is accepted and running.
    await sleep(1_000);
    const probed = await probe(vault.url, secretKey, probes, () => done);
    const beside = await batch;
    return {
      storage,
      decryptRate,
      ownDecryptRate,
      acceptMs: alone.acceptMs,
      seconds: alone.seconds,
      cpu,
      throughput: ITEMS / alone.seconds,
      freshThroughput: fresh === undefined ? undefined : WARMUP_ITEMS / fresh.seconds,
      probedThroughput: ITEMS / beside.seconds,
      idle: { p50: percentile(idle.latencies, 50), p99: percentile(idle.latencies, 99), n: idle.latencies.length },
      during: { p50: percentile(probed.latencies, 50), p99: percentile(probed.latencies, 99), n: probed.latencies.length, errors: probed.errors },
    };
  } finally {
    await vault.kill('SIGTERM');
  }
}

/**
 * CPU per item of the batch alone, in ms: the vault (its processes on
 * PostgreSQL; on PGlite also its main thread, its busiest other thread —
 * PGlite's — and the rest) and the PostgreSQL cluster.
 */
function cpuPerItem(pid: number, before: { vault: number; threads: Map<string, number>; cluster: number }, clusterAfter: number): string {
  const per = (ms: number) => (ms / ITEMS).toFixed(2);
  const threads = threadCpuMs(pid);
  const spent = (tid: string) => (threads.get(tid) ?? 0) - (before.threads.get(tid) ?? 0);
  const others = [...threads.keys()].filter((tid) => tid !== String(pid)).sort((a, b) => spent(b) - spent(a));
  const rest = others.slice(1).reduce((sum, tid) => sum + spent(tid), 0);
  const vault = `vault ${per(processTreeCpuMs(pid) - before.vault)} (main thread ${per(spent(String(pid)))}, busiest other thread ${per(others.length > 0 ? spent(others[0]!) : 0)}, other threads ${per(rest)})`;
  return clusterAfter === 0 ? vault : `${vault}, cluster ${per(clusterAfter - before.cluster)}`;
}

/** The receiver: another process, so its work is not the sender's; it reports each event id's arrival time. */
async function startReceiver(): Promise<{ url: string; child: ChildProcess; arrivals(): Promise<[string, number][]> }> {
  const child = fork(join(import.meta.dirname, 'webhook-receiver.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (message: { port: number }) => resolve(message.port)));
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    child,
    arrivals: () =>
      new Promise((resolve) => {
        child.once('message', (message: { arrivals: [string, number][] }) => resolve(message.arrivals));
        child.send('report');
      }),
  };
}

interface WebhookFigures {
  storage: string;
  events: number;
  perSecond: number;
  latency: { p50: number; p95: number; n: number };
}

async function benchWebhooks(storage: 'pglite' | 'postgres', cluster: ThrowawayPostgres | undefined): Promise<WebhookFigures> {
  const receiver = await startReceiver();
  const vault = await startTestVault({
    storage,
    name: 'bench-webhooks',
    jobs: false,
    ...(cluster === undefined ? {} : { databaseUrl: await cluster.createDatabase() }),
    env: { TESSERA_WEBHOOK_ALLOW_LOCAL: '1', TESSERA_LOG_LEVEL: 'warn' },
  });
  try {
    const merchant = await createMerchant(vault);
    const endpoint = await api(vault.url, 'POST', '/v1/webhook-endpoints', { key: merchant.secretKey, json: { url: receiver.url, events: ['token.created'] } });
    if (endpoint.status !== 201) throw new Error(`no endpoint: ${endpoint.text}`);
    const [jwk] = await fetchJwks(vault.url);
    const [card] = await makeCiphertexts(jwk!, 1);
    const token = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card } });
    const { rows } = await vault.vault.db.query<{ data: unknown }>(`select data from audit_events where token = $1 and event_type = 'token.created'`, [token.body.token]);
    const data = JSON.stringify(rows[0]!.data);

    // A backlog: the events (and their deliveries and jobs, by the trigger) committed while nothing sends; a
    // thousand a statement, which stays inside the storage's statement timeout on a loaded machine.
    for (let from = 1; from <= WEBHOOK_EVENTS; from += 1000) {
      await vault.vault.db.query(
        `insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
         select 'evt_bench' || g, $1, 'bench', 'token.created', 'succeeded', $2, '127.0.0.1', 'bench', 'token.created', $3::jsonb
           from generate_series($4::integer, $5::integer) g`,
        [merchant.id, token.body.token, data, from, Math.min(WEBHOOK_EVENTS, from + 999)],
      );
    }
    const started = Date.now();
    await vault.vault.jobs.start();
    let arrivals: [string, number][] = [];
    for (;;) {
      arrivals = await receiver.arrivals();
      if (arrivals.length >= WEBHOOK_EVENTS + 1) break;
      await sleep(200);
    }
    const last = Math.max(...arrivals.map(([, at]) => at));
    const perSecond = WEBHOOK_EVENTS / ((last - started) / 1000);

    // Latency: one event at a time, each its own transaction.
    const committed = new Map<string, number>();
    for (let i = 0; i < LATENCY_EVENTS; i++) {
      const id = `evt_latency${i}`;
      await vault.vault.db.query(
        `insert into audit_events (id, merchant_id, actor, action, outcome, token, client_ip, request_id, event_type, data)
         values ($1, $2, 'bench', 'token.created', 'succeeded', $3, '127.0.0.1', 'bench', 'token.created', $4::jsonb)`,
        [id, merchant.id, token.body.token, data],
      );
      committed.set(id, Date.now());
      await sleep(10);
    }
    for (;;) {
      arrivals = await receiver.arrivals();
      if (arrivals.filter(([id]) => committed.has(id)).length >= LATENCY_EVENTS) break;
      await sleep(200);
    }
    const latencies = arrivals.filter(([id]) => committed.has(id)).map(([id, at]) => at - committed.get(id)!);
    return { storage, events: WEBHOOK_EVENTS, perSecond, latency: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), n: latencies.length } };
  } finally {
    await vault.close();
    receiver.child.kill();
  }
}

const batches: BatchFigures[] = [];
const webhooks: WebhookFigures[] = [];
// `BENCH_ONLY=batch` or `=webhooks` runs one half; `BENCH_STORAGE=pglite` or `=postgres` one storage.
const only = process.env['BENCH_ONLY'];
const storages = process.env['BENCH_STORAGE'];
if (storages !== 'postgres') {
  if (only !== 'webhooks') batches.push(await benchBatch('pglite', undefined));
  if (only !== 'batch') webhooks.push(await benchWebhooks('pglite', undefined));
}
const cluster =
  storages === 'pglite'
    ? undefined
    : await startThrowawayPostgres({ name: 'bench-batch' }).catch((error: Error) => {
        console.warn(`PostgreSQL unavailable, skipping it: ${error.message}`);
        return undefined;
      });
if (cluster !== undefined) {
  try {
    if (only !== 'webhooks') batches.push(await benchBatch('postgres', cluster));
    if (only !== 'batch') webhooks.push(await benchWebhooks('postgres', cluster));
  } finally {
    await cluster.destroy();
  }
}

console.log(`\nA batch of ${ITEMS.toLocaleString('en')} items alone:\n`);
console.log('| storage | bare jose decrypt /s | own decrypt /s | 202 after ms | batch s | items/s | ÷ jose rate | ÷ own rate |');
console.log('|---|---|---|---|---|---|---|---|');
for (const b of batches) {
  console.log(
    `| ${b.storage} | ${b.decryptRate.toFixed(0)} | ${b.ownDecryptRate.toFixed(0)} | ${b.acceptMs.toFixed(0)} | ${b.seconds.toFixed(1)} | ${b.throughput.toFixed(0)} | ` +
      `${(b.throughput / b.decryptRate).toFixed(2)} | ${(b.throughput / b.ownDecryptRate).toFixed(2)} |`,
  );
}
for (const b of batches) console.log(`CPU per item, ${b.storage}: ${b.cpu}`);
for (const b of batches) {
  if (b.freshThroughput !== undefined) {
    console.log(`A fresh vault's first large batch (${WARMUP_ITEMS.toLocaleString('en')} items), ${b.storage}: ${b.freshThroughput.toFixed(0)} items/s, ${(b.freshThroughput / b.decryptRate).toFixed(2)} × the jose rate`);
  }
}
console.log('\nPOST /v1/tokens one at a time, idle and beside a second batch:\n');
console.log('| storage | idle p50 / p99 ms | beside the batch p50 / p99 ms | p99 ÷ idle p99 | that batch items/s |');
console.log('|---|---|---|---|---|');
for (const b of batches) {
  console.log(
    `| ${b.storage} | ${b.idle.p50.toFixed(1)} / ${b.idle.p99.toFixed(1)} | ${b.during.p50.toFixed(1)} / ${b.during.p99.toFixed(1)} (n=${b.during.n}, errors ${b.during.errors}) | ` +
      `${(b.during.p99 / b.idle.p99).toFixed(2)} | ${b.probedThroughput.toFixed(0)} |`,
  );
}
console.log('\nWebhook delivery to a local receiver:\n');
console.log('| storage | backlog | deliveries/s | event → delivery p50 / p95 ms |');
console.log('|---|---|---|---|');
for (const w of webhooks) console.log(`| ${w.storage} | ${w.events} | ${w.perSecond.toFixed(0)} | ${w.latency.p50.toFixed(0)} / ${w.latency.p95.toFixed(0)} (n=${w.latency.n}) |`);
// Figures are reported, not judged (a shared machine's noise is no verdict); a tokenization that failed during a batch is.
if (batches.some((b) => b.during.errors > 0)) process.exitCode = 1;
