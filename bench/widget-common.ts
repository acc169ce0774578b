/**
 * What the card-field benchmarks share (`bench:widget`, `bench:widget-driver`,
 * `bench:tokenize-cadence`): the vault, a process of its own on PGlite as
 * `npm run vault` runs it, its warm-up through the fields' own request, and
 * the merchant's checkout page.
 */
import { randomBytes } from 'node:crypto';
import { openSession, uniqueLetters, type TestMerchant } from '../test/support/api.ts';
import { CARDS, fetchJwks, nextYear } from '../test/support/cards.ts';
import { startVaultProcess, type VaultProcess } from '../test/support/vault-process.ts';
import { makeCiphertexts } from './ciphertexts.ts';

/** What the benchmarks' shopper types into each field: the test Visa, December next year, its CVC. */
export const TYPED_CARD: ReadonlyArray<readonly [field: string, text: string]> = [
  ['number', CARDS.visa.number.replaceAll(' ', '')],
  ['expiry', `12${String(nextYear() % 100).padStart(2, '0')}`],
  ['cvc', CARDS.visa.cvc],
];

/**
 * Node or V8 flags for the vault's process, to compare V8 settings (`BENCH_VAULT_NODE_FLAGS`, space-separated):
 * `--liftoff`, for one, runs PGlite as V8 compiles it by default (server/storage/pglite-compiler.ts).
 */
const VAULT_NODE_FLAGS = (process.env['BENCH_VAULT_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);

/** Starts the vault on `dataDir`, with the admin key `adminKey`. */
export function startBenchVault(dataDir: string, adminKey: string): Promise<VaultProcess> {
  return startVaultProcess({
    dataDir,
    nodeFlags: VAULT_NODE_FLAGS,
    env: {
      TESSERA_MASTER_KEY: randomBytes(32).toString('base64'),
      TESSERA_ADMIN_KEY: adminKey,
      // One browser on 127.0.0.1 makes every request: the per-IP and card-testing limits are not what is measured.
      TESSERA_RATE_LIMIT_PER_IP: '100000',
      TESSERA_RATE_LIMIT_PER_KEY: '100000',
      TESSERA_DECLINES_PER_SESSION: '100000',
      TESSERA_DECLINES_PER_IP: '100000',
    },
  });
}

/** `count` tokenizations as the card fields send them (a session per 20, an Idempotency-Key each), one at a time. */
export async function warmVault(vaultUrl: string, merchant: TestMerchant, count: number): Promise<void> {
  const [jwk] = await fetchJwks(vaultUrl);
  const cards = await makeCiphertexts(jwk!, count);
  let session = '';
  for (let i = 0; i < count; i++) {
    if (i % 20 === 0) session = await openSession(vaultUrl, merchant);
    const response = await fetch(`${vaultUrl}/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': uniqueLetters(24) },
      body: JSON.stringify({ key: merchant.publishableKey, session, card: cards[i], reusable: false }),
    });
    if (response.status !== 201) throw new Error(`warming the vault: POST /v1/tokens answered ${response.status}`);
  }
}

/**
 * The merchant's checkout page. Its script times the card API with
 * `performance.now()` and hands back plain numbers; it also notes when the
 * fields' `tessera:hello` reaches the page, to split the ready time.
 */
export const checkoutPage = (vaultUrl: string) => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Bench shop</title></head>
<body>
<div id="card"></div>
<script src="${vaultUrl}/v1/checkout.js"></script>
<script>
  window.bench = (() => {
    let card;
    let hello;
    addEventListener('message', (event) => {
      if (event.origin === ${JSON.stringify(vaultUrl)} && event.data && event.data.type === 'tessera:hello') hello = performance.now();
    });
    return {
      /** What a page does to start the card fields early: call Tessera(). */
      early(key) {
        Tessera(key);
      },
      /** Tessera(key).card().mount(), until ready; a card already there is destroyed first, just before. */
      mount(key, timeoutMs) {
        return new Promise((resolve, reject) => {
          if (card) card.destroy();
          card = Tessera(key).card({ mode: 'payment' });
          const timer = setTimeout(() => reject(new Error('no ready event within ' + timeoutMs + ' ms')), timeoutMs);
          card.on('error', (error) => {
            clearTimeout(timer);
            reject(new Error('error event: ' + error.code + ' ' + error.message));
          });
          hello = undefined;
          const started = performance.now();
          card.on('ready', () => {
            const ready = performance.now();
            clearTimeout(timer);
            resolve({ ms: ready - started, timeOrigin: performance.timeOrigin, started, hello: hello ?? null });
          });
          card.mount('#card');
        });
      },
      async tokenize() {
        const started = performance.now();
        const value = await card.tokenize();
        const ms = performance.now() - started;
        return { ms, timeOrigin: performance.timeOrigin, started, token: value.token, brand: value.card.brand };
      },
    };
  })();
</script>
</body>
</html>
`;
