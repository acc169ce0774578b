/**
 * `npm run bench:server`: tokenizations through HTTP against a real vault
 * process, at concurrency 1, 16 and 64, on PGlite and on PostgreSQL; and, in
 * the same run, the single-core rate of a bare jose `compactDecrypt` loop — the
 * crypto every tokenization must pay, as the issues state it — and of the
 * vault's own decrypt (node:crypto), to report throughput ÷ each rate.
 * Then authorize + capture pairs on saved tokens at concurrency 16.
 *
 * Each load level is bounded by a count of pre-made ciphertexts and by time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { fetchJwks } from '../test/support/cards.ts';
import { decryptRates, makeCiphertexts } from './ciphertexts.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startVaultProcess, type VaultProcess } from '../test/support/vault-process.ts';
import { newDataDir } from '../test/support/vault.ts';
import { percentile } from './stats.ts';

const LEVELS = [1, 16, 64];
const SECONDS_PER_LEVEL = Number(process.env['BENCH_SECONDS'] ?? 20);
const MAX_REQUESTS_PER_LEVEL = Number(process.env['BENCH_MAX_REQUESTS'] ?? 12_000);

interface LevelResult {
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
}

/** One POST over a kept-alive connection; resolves with the status and body once the body is read. */
function post(agent: Agent, url: URL, secretKey: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Runs `operation` from `concurrency` loops until `count` operations are done
 * or the time is up; `operation(i)` resolves true when it succeeded.
 */
async function load(concurrency: number, count: number, operation: (i: number) => Promise<boolean>): Promise<LevelResult> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const deadline = performance.now() + SECONDS_PER_LEVEL * 1000;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < deadline && next < count) {
      const i = next++;
      const t0 = performance.now();
      const ok = await operation(i).catch((error: Error) => {
        if (errors === 0) console.warn(`first request error: ${error.message}`);
        return false;
      });
      latencies.push(performance.now() - t0);
      if (!ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requests: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

async function runLevel(baseUrl: string, secretKey: string, ciphertexts: string[], concurrency: number): Promise<LevelResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/v1/tokens', baseUrl);
  try {
    return await load(concurrency, ciphertexts.length, async (i) => (await post(agent, url, secretKey, JSON.stringify({ card: ciphertexts[i] }))).status === 201);
  } finally {
    agent.destroy();
  }
}

/** Authorize, then capture, on saved tokens: one operation is the pair. */
async function runPayments(baseUrl: string, secretKey: string, ciphertexts: string[], concurrency: number): Promise<LevelResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    const tokens: string[] = [];
    for (const card of ciphertexts) {
      const created = await post(agent, new URL('/v1/tokens', baseUrl), secretKey, JSON.stringify({ card, reusable: true }));
      if (created.status !== 201) throw new Error(`could not save a token: ${created.status}`);
      tokens.push((JSON.parse(created.body) as { token: string }).token);
    }
    const payments = new URL('/v1/payments', baseUrl);
    return await load(concurrency, MAX_REQUESTS_PER_LEVEL, async (i) => {
      const token = tokens[i % tokens.length];
      const authorized = await post(agent, payments, secretKey, JSON.stringify({ token, amount: 1999, currency: 'EUR', capture: false }));
      if (authorized.status !== 201) return false;
      const { id } = JSON.parse(authorized.body) as { id: string };
      const captured = await post(agent, new URL(`/v1/payments/${id}/capture`, baseUrl), secretKey, '{}');
      return captured.status === 200;
    });
  } finally {
    agent.destroy();
  }
}

const PAYMENT_CONCURRENCY = 16;
const SAVED_TOKENS = 200;

async function benchStorage(
  storage: 'pglite' | 'postgres',
  decryptRate: number,
  cluster?: ThrowawayPostgres,
): Promise<{ tokens: LevelResult[]; payments: LevelResult }> {
  const dataDir = await newDataDir(storage, 'bench');
  const env: Record<string, string> = { TESSERA_LOG_LEVEL: 'info' };
  if (cluster !== undefined) env['DATABASE_URL'] = await cluster.createDatabase();
  const vault: VaultProcess = await startVaultProcess({ dataDir, env });
  try {
    const demo = JSON.parse(readFileSync(join(dataDir, 'demo-merchant.json'), 'utf8')) as { secret_key: string };
    const [jwk] = await fetchJwks(vault.url);
    const results: LevelResult[] = [];
    for (const concurrency of LEVELS) {
      const budget = Math.min(MAX_REQUESTS_PER_LEVEL, Math.ceil(decryptRate * 2.5 * SECONDS_PER_LEVEL));
      const ciphertexts = await makeCiphertexts(jwk!, concurrency === 1 ? Math.min(budget, 3000) : budget);
      const result = await runLevel(vault.url, demo.secret_key, ciphertexts, concurrency);
      results.push(result);
      console.log(
        `${storage.padEnd(8)} c=${String(concurrency).padStart(2)}  ${result.throughput.toFixed(0).padStart(5)} tokens/s  ` +
          `p50 ${result.p50.toFixed(1)} ms  p99 ${result.p99.toFixed(1)} ms  errors ${result.errors}/${result.requests}  ` +
          `ratio ${(result.throughput / decryptRate).toFixed(2)} (jose), ${(result.throughput / ownDecryptRate).toFixed(2)} (own)`,
      );
    }
    const payments = await runPayments(vault.url, demo.secret_key, await makeCiphertexts(jwk!, SAVED_TOKENS), PAYMENT_CONCURRENCY);
    console.log(
      `${storage.padEnd(8)} authorize+capture c=${PAYMENT_CONCURRENCY}  ${payments.throughput.toFixed(0)} pairs/s  ` +
        `p50 ${payments.p50.toFixed(1)} ms  p99 ${payments.p99.toFixed(1)} ms  errors ${payments.errors}/${payments.requests}`,
    );
    return { tokens: results, payments };
  } finally {
    await vault.kill('SIGTERM');
  }
}

const { jose: decryptRate, own: ownDecryptRate } = await decryptRates('');

const rows: string[] = [];
const paymentRows: string[] = [];
const record = (storage: string, results: { tokens: LevelResult[]; payments: LevelResult }) => {
  for (const r of results.tokens) {
    rows.push(
      `| ${storage} | ${r.concurrency} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors}/${r.requests} | ${(r.throughput / decryptRate).toFixed(2)} | ${(r.throughput / ownDecryptRate).toFixed(2)} |`,
    );
  }
  const p = results.payments;
  paymentRows.push(`| ${storage} | ${p.concurrency} | ${p.throughput.toFixed(0)} | ${p.p50.toFixed(1)} | ${p.p99.toFixed(1)} | ${p.errors}/${p.requests} |`);
};
record('PGlite', await benchStorage('pglite', decryptRate));
const cluster = await startThrowawayPostgres({ name: 'bench' }).catch((error: Error) => {
  console.warn(`PostgreSQL unavailable, skipping it: ${error.message}`);
  return undefined;
});
if (cluster !== undefined) {
  try {
    record('PostgreSQL', await benchStorage('postgres', decryptRate, cluster));
  } finally {
    await cluster.destroy();
  }
}
console.log(`\nBare decrypt (one core): jose compactDecrypt ${decryptRate.toFixed(0)}/s, the vault's own ${ownDecryptRate.toFixed(0)}/s\n`);
console.log('| storage | concurrency | tokens/s | p50 ms | p99 ms | errors | ÷ jose decrypt rate | ÷ own decrypt rate |');
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
console.log('\nAuthorize + capture on saved tokens (one pair = two requests):\n');
console.log('| storage | concurrency | pairs/s | p50 ms | p99 ms | errors |');
console.log('|---|---|---|---|---|---|');
for (const row of paymentRows) console.log(row);
