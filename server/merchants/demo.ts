import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MerchantDirectory } from './service.ts';

export const DEMO_MERCHANT_ORIGIN = 'http://localhost:4100';

/**
 * On first start with an empty store, creates the demo storefront's merchant
 * and writes its keys to `<data>/demo-merchant.json` (mode 0600: it holds a
 * secret key) for the demo backend to read.
 */
export async function ensureDemoMerchant(merchants: MerchantDirectory, dataDir: string, log: Logger): Promise<void> {
  if ((await merchants.count()) > 0) return;
  const { merchant, secretKey } = await merchants.create({
    name: 'Tessera Demo Shop',
    allowed_origins: [DEMO_MERCHANT_ORIGIN],
    unique_tokens: false,
  });
  const path = join(dataDir, 'demo-merchant.json');
  const file = { merchant_id: merchant.id, publishable_key: merchant.publishable_key, secret_key: secretKey };
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  log.info({ merchant_id: merchant.id, path }, 'demo merchant created');
}
