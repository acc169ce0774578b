/**
 * What the tokenization benchmarks share: the rate the crypto alone allows,
 * and card JWEs made ahead of the load, as the card fields would make them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, generateKeyPair, importJWK, type JWK } from 'jose';
import { decryptCardCiphertext } from '../server/keys/card-ciphertext.ts';
import { CARDS, cardPlaintext, randomCard } from '../test/support/cards.ts';

const DECRYPT_SECONDS = 5;
/**
 * Each loop runs this long before it counts. With 200 calls first, a fresh
 * process's jose loop measured about 10 % under what the same loop does once
 * warm (2026-12-03, three processes, six loops each: 1,792–1,823/s first,
 * 1,946–2,060/s after): V8 grows the young generation and optimises over
 * seconds, not a few hundred calls.
 */
const WARM_UP_SECONDS = 3;

/** Calls `run` for `seconds`; how many times it ran. */
async function timedLoop(seconds: number, run: () => unknown): Promise<{ count: number; seconds: number }> {
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    const ran = run();
    if (ran instanceof Promise) await ran;
    count++;
  }
  return { count, seconds: (performance.now() - started) / 1000 };
}

/** The rate of `run` on one core: a warm-up loop, then the counted one. */
async function steadyRate(run: () => unknown): Promise<number> {
  await timedLoop(WARM_UP_SECONDS, run);
  const { count, seconds } = await timedLoop(DECRYPT_SECONDS, run);
  return count / seconds;
}

/** One card JWE of our profile and the private key that opens it. */
async function benchJwe() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(cardPlaintext())))
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'bench', iat: Math.floor(Date.now() / 1000) })
    .encrypt(publicKey);
  return { jwe, privateKey };
}

/**
 * The sequential rate of jose's compactDecrypt with our alg and enc: one
 * core's worth of unavoidable crypto, as the issues' targets are stated
 * (the vault itself no longer decrypts with jose: see `ownDecryptRate`).
 */
export async function bareDecryptRate(): Promise<number> {
  const { jwe, privateKey: key } = await benchJwe();
  const options = { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] };
  return steadyRate(() => compactDecrypt(jwe, key, options));
}

/** The same loop over the vault's own decrypt (`decryptCardCiphertext`, node:crypto): one core's worth of the crypto the vault runs. */
export async function ownDecryptRate(): Promise<number> {
  const { jwe, privateKey } = await benchJwe();
  return steadyRate(() => decryptCardCiphertext(jwe, privateKey));
}

/** Both bare rates, measured one after the other in this run, and printed. */
export async function decryptRates(label: string): Promise<{ jose: number; own: number }> {
  const jose = await bareDecryptRate();
  const own = await ownDecryptRate();
  console.log(`${label}bare decrypt, one core, sequential: jose compactDecrypt ${jose.toFixed(0)}/s, the vault's own ${own.toFixed(0)}/s`);
  return { jose, own };
}

/**
 * Distinct JWEs (each its own content key, IV and card number) from one
 * ephemeral ECDH key: a key pair per JWE would mean tens of thousands of EC
 * key generations in this process, which on Node 20.20 can deadlock it in
 * the garbage collector. The vault's work per JWE is the same either way.
 */
export async function makeCiphertexts(jwk: JWK, count: number): Promise<string[]> {
  const key = await importJWK({ ...jwk, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
  const { privateKey: epk } = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(cardPlaintext({ number: randomCard(), cvc: CARDS.visa.cvc }))))
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: jwk.kid!, iat: Math.floor(Date.now() / 1000) })
        .setKeyManagementParameters({ epk })
        .encrypt(key),
    );
  }
  return out;
}
