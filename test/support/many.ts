import { setTimeout as sleep } from 'node:timers/promises';
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

/**
 * `count` saved-card tokens of `card`, in order, made through one async token
 * batch (`POST /v1/token-batches`, then its results): for tests that need many
 * tokens and are not about how they were made. It tokenizes each card as
 * `POST /v1/tokens` does, without a round trip per token: 999 tokens took 27 s
 * one request each and 5 s in a batch (PGlite, loaded 2-core machine).
 */
export async function batchTokens(vaultUrl: string, merchant: TestMerchant, count: number, card: CardPlaintext = cardPlaintext()): Promise<string[]> {
  const jwes = await encryptMany(vaultUrl, Array.from({ length: count }, () => card));
  const accepted = await api(vaultUrl, 'POST', '/v1/token-batches', { key: merchant.secretKey, json: { items: jwes.map((jwe) => ({ card: jwe, reusable: true })) } });
  if (accepted.status !== 202) throw new Error(`submitting a token batch failed: ${accepted.status} ${accepted.text}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const read = await api(vaultUrl, 'GET', `/v1/token-batches/${accepted.body.id}`, { key: merchant.secretKey });
    if (read.status !== 200) throw new Error(`reading a token batch failed: ${read.status} ${read.text}`);
    if (read.body.status === 'completed') break;
    if (Date.now() > deadline) throw new Error(`token batch ${accepted.body.id} still ${read.body.status} (${read.body.processed}/${read.body.total})`);
    await sleep(50);
  }
  const tokens: string[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await api(vaultUrl, 'GET', `/v1/token-batches/${accepted.body.id}/results?limit=1000${after === undefined ? '' : `&starting_after=${after}`}`, {
      key: merchant.secretKey,
    });
    if (page.status !== 200) throw new Error(`reading a token batch's results failed: ${page.status} ${page.text}`);
    for (const result of page.body.data as { index: number; ok: boolean; token?: string; error?: unknown }[]) {
      if (!result.ok || result.index !== tokens.length) throw new Error(`token batch item ${result.index} failed: ${JSON.stringify(result)}`);
      tokens.push(result.token!);
    }
    if (!page.body.has_more) break;
    after = page.body.data.at(-1).index;
  }
  if (tokens.length !== count) throw new Error(`token batch made ${tokens.length} tokens, not ${count}`);
  return tokens;
}
