/**
 * `npm run bench:scale`: does the vault stay as fast with a million stored
 * tokens as with ten thousand? On a throwaway PostgreSQL, a real vault
 * process; the tokens are seeded (scripts/seed-tokens.ts) up to each level,
 * then the latency of `GET /v1/tokens/{t}`, `GET /v1/tokens?customer=…`,
 * `POST /v1/tokens` and an authorization (`POST /v1/payments`,
 * `capture: false`) on random stored tokens is measured, at concurrency 4,
 * against one vault process (latency, not throughput, is the question).
 * Target (issue #14): p99 at 1 M ≤ 2 × p99 at 10 k. Also the bytes per
 * stored token (table and indexes) at each level.
 *
 *   npm run bench:scale [-- --levels 10000,100000,1000000] [--requests 400]
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { MerchantDirectory } from '../server/merchants/service.ts';
import { openVault } from '../server/vault.ts';
import { seededCustomer, seedTokens, tokenStorage } from '../scripts/seed-tokens.ts';
import { fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { startVaultProcess } from '../test/support/vault-process.ts';
import { newDataDir } from '../test/support/vault.ts';
import { makeCiphertexts } from './ciphertexts.ts';
import { percentile } from './stats.ts';

const { values } = parseArgs({ options: { levels: { type: 'string', default: '10000,100000,1000000' }, requests: { type: 'string', default: '400' } } });
const LEVELS = values.levels.split(',').map(Number);
const REQUESTS = Number(values.requests);
const CONCURRENCY = 4;
const OPERATIONS = ['read', 'list by customer', 'tokenize', 'authorize'] as const;
type Operation = (typeof OPERATIONS)[number];

function call(agent: Agent, url: string, secretKey: string, method: string, body?: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        agent,
        headers: { authorization: `Bearer ${secretKey}`, ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** `REQUESTS` calls from `CONCURRENCY` loops; the latencies sorted, and the calls that answered something else than `ok`. */
async function measure(run: (i: number) => Promise<number>, ok: number[]): Promise<{ p50: number; p99: number; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) {
        const i = next++;
        const started = performance.now();
        const status = await run(i).catch(() => 0);
        latencies.push(performance.now() - started);
        if (!ok.includes(status)) errors++;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
}

const cluster = await startThrowawayPostgres({ name: 'bench-scale' });
const dataDir = await newDataDir('postgres', 'bench-scale');
const databaseUrl = await cluster.createDatabase();
const vaultProcess = await startVaultProcess({ dataDir, env: { DATABASE_URL: databaseUrl, TESSERA_LOG_LEVEL: 'info', TESSERA_WORKERS: '1' }, startTimeoutMs: 300_000 });
// The seed writes through a vault of its own on the same database and key files.
const seeder = await openVault(loadConfig({ DATABASE_URL: databaseUrl, TESSERA_DATA_DIR: dataDir }), { log: createLogger({ level: 'warn' }), maintenance: false, jobs: false });
const rows: string[] = [];
const p99At = new Map<number, Record<Operation, number>>();
try {
  const url = vaultProcess.url.replace('localhost', '127.0.0.1');
  const demo = JSON.parse(readFileSync(join(dataDir, 'demo-merchant.json'), 'utf8')) as { merchant_id: string; secret_key: string };
  const merchant = (await new MerchantDirectory(seeder.db, seeder.deps.merchantKeys).byId(demo.merchant_id))!;
  const [jwk] = await fetchJwks(url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const tokens: string[] = [];
  for (const level of LEVELS) {
    const started = performance.now();
    for (const token of await seedTokens(seeder.deps, merchant, { from: tokens.length, to: level })) tokens.push(token);
    const seedSeconds = (performance.now() - started) / 1000;
    await seeder.db.query('vacuum analyze tokens');
    const storage = await tokenStorage(seeder.db);
    const indexBytes = storage.indexes.reduce((sum, index) => sum + index.bytes, 0);
    const perToken = Math.round((storage.table + indexBytes) / storage.tokens);
    console.log(`${level.toLocaleString('en')} tokens (seeded in ${seedSeconds.toFixed(0)} s): ${perToken} bytes per stored token`);
    const random = () => tokens[Math.floor(Math.random() * level)]!;
    const customers = Math.ceil(level / 10);
    const cards = await makeCiphertexts(jwk!, REQUESTS);
    const results = {
      read: await measure(() => call(agent, `${url}/v1/tokens/${random()}`, demo.secret_key, 'GET'), [200]),
      'list by customer': await measure(
        () => call(agent, `${url}/v1/tokens?customer=${seededCustomer(Math.floor(Math.random() * customers) * 10)}&limit=10`, demo.secret_key, 'GET'),
        [200],
      ),
      tokenize: await measure((i) => call(agent, `${url}/v1/tokens`, demo.secret_key, 'POST', { card: cards[i] }), [201]),
      authorize: await measure(() => call(agent, `${url}/v1/payments`, demo.secret_key, 'POST', { token: random(), amount: 1999, currency: 'EUR', capture: false }), [201, 402]),
    } satisfies Record<Operation, unknown>;
    p99At.set(level, Object.fromEntries(OPERATIONS.map((operation) => [operation, results[operation].p99])) as Record<Operation, number>);
    for (const operation of OPERATIONS) {
      const r = results[operation];
      console.log(`  ${operation.padEnd(17)} p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  errors ${r.errors}/${REQUESTS}`);
      rows.push(`| ${level.toLocaleString('en')} | ${operation} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors}/${REQUESTS} | ${perToken} |`);
    }
  }
  agent.destroy();
  const storage = await tokenStorage(seeder.db);
  console.log(`\nindexes on tokens at ${storage.tokens.toLocaleString('en')}: ${storage.indexes.map((index) => `${index.name} ${(index.bytes / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);
} finally {
  await seeder.close();
  await vaultProcess.kill('SIGTERM');
  await cluster.destroy();
}

console.log(`\nPostgreSQL, concurrency ${CONCURRENCY}, ${REQUESTS} requests per operation and level; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
console.log('| stored tokens | operation | p50 ms | p99 ms | errors | bytes per stored token |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
const first = p99At.get(LEVELS[0]!);
const last = p99At.get(LEVELS.at(-1)!);
if (first !== undefined && last !== undefined && LEVELS.length > 1) {
  console.log('');
  for (const operation of OPERATIONS) {
    const ratio = last[operation] / first[operation];
    console.log(`${operation}: p99 at ${LEVELS.at(-1)!.toLocaleString('en')} ÷ p99 at ${LEVELS[0]!.toLocaleString('en')} = ${ratio.toFixed(2)} ${ratio <= 2 ? '(≤ 2: met)' : '(> 2: missed)'}`);
  }
}
