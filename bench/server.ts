/**
 * `npm run bench:server`: tokenizations through HTTP against a real vault
 * process, at concurrency 1, 16 and 64, on PGlite and on PostgreSQL; and, in
 * the same run, the single-core rate of a bare `compactDecrypt` loop — the
 * crypto every tokenization must pay — to report throughput ÷ that rate.
 *
 * Each load level is bounded by a count of pre-made ciphertexts and by time.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import { CARDS, cardPlaintext, fetchJwks } from '../test/support/cards.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { startVaultProcess, type VaultProcess } from '../test/support/vault-process.ts';
import { newDataDir } from '../test/support/vault.ts';

const LEVELS = [1, 16, 64];
const SECONDS_PER_LEVEL = Number(process.env['BENCH_SECONDS'] ?? 20);
const MAX_REQUESTS_PER_LEVEL = Number(process.env['BENCH_MAX_REQUESTS'] ?? 12_000);
const DECRYPT_SECONDS = 5;

interface LevelResult {
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
}

/** The sequential rate of jose's compactDecrypt with our alg and enc: one core's worth of unavoidable crypto. */
async function bareDecryptRate(): Promise<number> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = privateKey;
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(cardPlaintext())))
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'bench', iat: Math.floor(Date.now() / 1000) })
    .encrypt(publicKey);
  const options = { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] };
  for (let i = 0; i < 200; i++) await compactDecrypt(jwe, key, options);
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < DECRYPT_SECONDS * 1000) {
    await compactDecrypt(jwe, key, options);
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

/** A random Luhn-valid Visa number: real traffic is mostly distinct cards. */
function randomVisa(): string {
  const digits = [4, ...Array.from({ length: 14 }, () => Math.floor(Math.random() * 10))];
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    let d = digits[14 - i]!;
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return [...digits, (10 - (sum % 10)) % 10].join('');
}

async function makeCiphertexts(jwk: JWK, count: number): Promise<string[]> {
  const key = await importJWK({ ...jwk, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(cardPlaintext({ number: randomVisa(), cvc: CARDS.visa.cvc }))))
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: jwk.kid!, iat: Math.floor(Date.now() / 1000) })
        .encrypt(key),
    );
  }
  return out;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** One POST over a kept-alive connection; resolves with the status once the body is read. */
function post(agent: Agent, url: URL, secretKey: string, body: string): Promise<number> {
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
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

async function runLevel(baseUrl: string, secretKey: string, ciphertexts: string[], concurrency: number): Promise<LevelResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/v1/tokens', baseUrl);
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const deadline = performance.now() + SECONDS_PER_LEVEL * 1000;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < deadline) {
      const card = ciphertexts[next++];
      if (card === undefined) return;
      const t0 = performance.now();
      const status = await post(agent, url, secretKey, JSON.stringify({ card })).catch((error: Error) => {
        if (errors === 0) console.warn(`first request error: ${error.message}`);
        return 0;
      });
      latencies.push(performance.now() - t0);
      if (status !== 201) errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
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

async function benchStorage(storage: 'pglite' | 'postgres', decryptRate: number, cluster?: ThrowawayPostgres): Promise<LevelResult[]> {
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
          `ratio ${(result.throughput / decryptRate).toFixed(2)}`,
      );
    }
    return results;
  } finally {
    await vault.kill('SIGTERM');
  }
}

const decryptRate = await bareDecryptRate();
console.log(`bare compactDecrypt, one core, sequential: ${decryptRate.toFixed(0)} /s`);

const rows: string[] = [];
const record = (storage: string, results: LevelResult[]) => {
  for (const r of results) {
    rows.push(
      `| ${storage} | ${r.concurrency} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors}/${r.requests} | ${(r.throughput / decryptRate).toFixed(2)} |`,
    );
  }
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
console.log(`\nBare compactDecrypt (one core): ${decryptRate.toFixed(0)}/s\n`);
console.log('| storage | concurrency | tokens/s | p50 ms | p99 ms | errors | ÷ decrypt rate |');
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
