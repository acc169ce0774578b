import { generateKeyPair, type JWK } from 'jose';
import { api, type TestMerchant } from './api.ts';
import { cardPlaintext, encryptCard, fetchJwks, type CardPlaintext } from './cards.ts';

/** Runs `work` for 0..count-1, `concurrency` at a time; results in index order. */
export async function inParallel<T>(count: number, concurrency: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await work(index);
      }
    }),
  );
  return results;
}

/**
 * Card JWEs to the vault's current key, fetched once (not once per card), all
 * from one ephemeral ECDH key. A key pair per JWE, as the card fields make,
 * would mean thousands of EC key generations in one test process, and on
 * Node 20.20 that many can deadlock the process in the garbage collector.
 */
export async function encryptMany(vaultUrl: string, cards: (CardPlaintext | object)[]): Promise<string[]> {
  const [key] = await fetchJwks(vaultUrl);
  const { privateKey: ephemeralKey } = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
  return inParallel(cards.length, 8, (i) => encryptCard(vaultUrl, cards[i]!, { key: key as JWK, ephemeralKey }));
}

/** `count` saved-card tokens made through the API by the merchant's server, in order. */
export async function createTokens(
  vaultUrl: string,
  merchant: TestMerchant,
  count: number,
  card: CardPlaintext = cardPlaintext(),
  extra: Record<string, unknown> = {},
): Promise<{ token: string; card: { fingerprint: string; exp_month: number; exp_year: number; name: string | null } }[]> {
  const jwes = await encryptMany(vaultUrl, Array.from({ length: count }, () => card));
  return inParallel(count, 8, async (i) => {
    const created = await api(vaultUrl, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: jwes[i], ...extra } });
    if (created.status !== 201) throw new Error(`creating a token failed: ${created.status} ${created.text}`);
    return created.body;
  });
}
