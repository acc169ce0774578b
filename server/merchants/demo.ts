import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MerchantDirectory } from './service.ts';

export const DEMO_MERCHANT_ORIGIN = 'http://localhost:4100';
export const DEMO_MERCHANT_NAME = 'Tessera Demo Shop';
export const demoMerchantPath = (dataDir: string) => join(dataDir, 'demo-merchant.json');

/**
 * On first start with an empty store, creates the demo storefront's merchant
 * and writes its keys to `<data>/demo-merchant.json` (mode 0600: it holds a
 * secret key) for the demo backend to read. Never in production.
 */
export async function ensureDemoMerchant(merchants: MerchantDirectory, dataDir: string, log: Logger): Promise<void> {
  if ((await merchants.count()) > 0) return;
  const { merchant, secretKey } = await merchants.create({
    name: DEMO_MERCHANT_NAME,
    allowed_origins: [DEMO_MERCHANT_ORIGIN],
    unique_tokens: false,
    network_tokens: false,
  });
  const path = demoMerchantPath(dataDir);
  const file = { merchant_id: merchant.id, publishable_key: merchant.publishable_key, secret_key: secretKey };
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  log.info({ merchant_id: merchant.id, path }, 'demo merchant created');
}

/**
 * A production vault must not serve the demo merchant: its secret key was
 * written to a file in plain text, and it allows a plain-http localhost
 * origin. It is recognized by that file in the data folder, or, once the
 * file is gone, by the name and origin `ensureDemoMerchant` gives it.
 */
export async function refuseDemoMerchant(merchants: MerchantDirectory, dataDir: string): Promise<void> {
  const path = demoMerchantPath(dataDir);
  if (existsSync(path)) {
    throw new Error(
      `NODE_ENV=production: the data folder holds ${path}, the demo merchant's keys in plain text. ` +
        'Run production on a store and data folder that a development start never used.',
    );
  }
  const ids = await merchants.idsNamed(DEMO_MERCHANT_NAME, DEMO_MERCHANT_ORIGIN);
  if (ids.length > 0) {
    throw new Error(
      `NODE_ENV=production: the store holds the demo merchant (${ids.join(', ')}: "${DEMO_MERCHANT_NAME}", ${DEMO_MERCHANT_ORIGIN}), ` +
        'made by a development start. Run production on a store that a development start never used.',
    );
  }
}
