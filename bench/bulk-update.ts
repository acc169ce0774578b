/**
 * `npm run bench:bulk`: how long `PATCH /v1/tokens` takes for 1,000 items
 * (each a new expiry as a card JWE), against a real vault on a loopback
 * port, on PGlite and on PostgreSQL (a throwaway cluster), without and with
 * an Idempotency-Key. Each storage runs `BENCH_ROUNDS` rounds (default 3).
 */
import { api, createMerchant } from '../test/support/api.ts';
import { CARDS, cardPlaintext, nextYear } from '../test/support/cards.ts';
import { createTokens, encryptMany } from '../test/support/many.ts';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { startTestVault, type StartOptions } from '../test/support/vault.ts';

const ITEMS = 1000;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

async function bench(label: string, options: StartOptions): Promise<void> {
  const vault = await startTestVault({ ...options, name: 'bench-bulk' });
  try {
    const shop = await createMerchant(vault);
    const tokens = await createTokens(vault.url, shop, ITEMS);
    for (let round = 0; round < ROUNDS; round++) {
      const jwes = await encryptMany(vault.url, tokens.map(() => cardPlaintext(CARDS.visa, { exp_month: 1 + (round % 12), exp_year: nextYear() + 2 })));
      const json = { tokens: tokens.map((t, i) => ({ token: t.token, card: jwes[i] })) };
      const withKey = round % 2 === 1;
      const started = performance.now();
      const response = await api(vault.url, 'PATCH', '/v1/tokens', {
        key: shop.secretKey,
        json,
        headers: withKey ? { 'Idempotency-Key': `bench-${round}` } : {},
      });
      const ms = performance.now() - started;
      if (response.status !== 200 || response.body.status !== 'SUCCESS') throw new Error(`the bulk update failed: ${response.status}`);
      console.log(`${label.padEnd(10)} round ${round + 1}  ${ITEMS} items  ${withKey ? 'with key   ' : 'without key'}  ${ms.toFixed(0).padStart(5)} ms`);
    }
  } finally {
    await vault.close();
  }
}

await bench('PGlite', { storage: 'pglite' });
const cluster = await startThrowawayPostgres({ name: 'bench-bulk' }).catch((error: Error) => {
  console.warn(`PostgreSQL unavailable, skipping it: ${error.message}`);
  return undefined;
});
if (cluster !== undefined) {
  try {
    await bench('PostgreSQL', { storage: 'postgres', databaseUrl: await cluster.createDatabase() });
  } finally {
    await cluster.destroy();
  }
}
