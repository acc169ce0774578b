import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const EnvSchema = z.object({
  /** Where the shop listens. The demo merchant allows the origin http://localhost:4100 only, so another port gets no card fields. */
  DEMO_PORT: z.coerce.number().int().min(1).max(65535).default(4100),
  /** The vault as the shopper's browser reaches it: the pages load checkout.js from here, and the shop's server calls it. */
  TESSERA_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:4000'),
  /** The vault's data folder, where it wrote the demo merchant's keys on first start. */
  TESSERA_DATA_DIR: z.string().min(1).default('.tessera'),
});

export interface DemoConfig {
  port: number;
  vaultUrl: string;
  dataDir: string;
}

/** Parses the environment once at boot; a bad value stops the shop with a message naming the variable. */
export function loadDemoConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid demo shop configuration:\n  ${problems.join('\n  ')}`);
  }
  return {
    port: parsed.data.DEMO_PORT,
    // An origin, without the trailing slash URL parsing would add, so it can be joined to paths and used in a CSP.
    vaultUrl: new URL(parsed.data.TESSERA_URL).origin,
    dataDir: resolve(parsed.data.TESSERA_DATA_DIR),
  };
}

const DemoMerchantSchema = z.object({
  merchant_id: z.string().min(1),
  publishable_key: z.string().startsWith('pk_'),
  secret_key: z.string().startsWith('sk_'),
});

/** The demo merchant's keys; the secret key stays on the shop's server. */
export interface DemoMerchant {
  merchantId: string;
  publishableKey: string;
  secretKey: string;
}

export const demoMerchantPath = (dataDir: string) => join(dataDir, 'demo-merchant.json');

/**
 * Reads `<data>/demo-merchant.json`, which the vault writes on its first
 * start. Errors are fixed sentences: the file holds a secret key, and
 * JSON.parse and zod messages can quote what they read.
 */
export function loadDemoMerchant(dataDir: string): DemoMerchant {
  const path = demoMerchantPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(
      `No demo merchant at ${path}. Start the vault first (\`npm start\` starts both); ` +
        'it writes this file on its first start with an empty data folder.',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${path} is not valid JSON.`);
  }
  const parsed = DemoMerchantSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${path} does not hold {"merchant_id","publishable_key":"pk_…","secret_key":"sk_…"}.`);
  }
  return {
    merchantId: parsed.data.merchant_id,
    publishableKey: parsed.data.publishable_key,
    secretKey: parsed.data.secret_key,
  };
}
