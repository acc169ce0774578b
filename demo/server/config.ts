import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

/**
 * How much card testing and password guessing the shop lets through before
 * it refuses (docs/decisions.md, Demo shop). Card attempts are payment
 * attempts and verifications of cards saved without a purchase; a client is
 * an IP address (an IPv6 client's /64).
 */
export interface ShopLimits {
  /** The sliding window card attempts are counted in. */
  cardAttemptWindowMs: number;
  cardAttemptsPerOrder: number;
  cardAttemptsPerSession: number;
  cardAttemptsPerClient: number;
  /** Failed sign-ins in a row for one e-mail address before each further failure locks it. */
  loginFailuresPerEmail: number;
  /** Failed sign-ins in a row from one client (any address) before each further failure locks it. */
  loginFailuresPerClient: number;
  /** The first lock; each further failure doubles it, up to `loginLockoutMaxMs`. */
  loginLockoutBaseMs: number;
  loginLockoutMaxMs: number;
}

export const DEFAULT_LIMITS: ShopLimits = {
  cardAttemptWindowMs: 3600_000,
  cardAttemptsPerOrder: 3,
  cardAttemptsPerSession: 5,
  cardAttemptsPerClient: 10,
  loginFailuresPerEmail: 5,
  loginFailuresPerClient: 20,
  loginLockoutBaseMs: 30_000,
  loginLockoutMaxMs: 3600_000,
};

const count = (fallback: number) => z.coerce.number().int().min(1).max(1_000_000).default(fallback);
/** Seconds, fractions allowed (tests lock for one second, not thirty). */
const seconds = (fallbackMs: number) =>
  z.coerce
    .number()
    .min(0.001)
    .max(30 * 86400)
    .default(fallbackMs / 1000);

const EnvSchema = z.object({
  /** Where the shop listens. The demo merchant allows the origin http://localhost:4100 only, so another port gets no card fields. */
  DEMO_PORT: z.coerce.number().int().min(1).max(65535).default(4100),
  /** The vault as the shopper's browser reaches it: the pages load checkout.js from here, and the shop's server calls it. */
  TESSERA_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:4000'),
  /** The vault's data folder, where it wrote the demo merchant's keys on first start. */
  TESSERA_DATA_DIR: z.string().min(1).default('.tessera'),
  /** The shop's own data folder (its embedded database, and `vault-secret-key` once the merchant rolled the key): by default `demo/` inside the vault's data folder, but a separate database. */
  DEMO_DATA_DIR: z.string().min(1).optional(),
  /**
   * Where the vault sends the shop's webhooks: by default its receiver on the loopback address it listens on (the vault
   * accepts http and loopback only under TESSERA_WEBHOOK_ALLOW_LOCAL=1, which `npm start` sets); a public https URL
   * behind a proxy or tunnel otherwise.
   */
  DEMO_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The dashboard's password; without it one is generated into `<DEMO_DATA_DIR>/dashboard-password` on first start. */
  DEMO_DASHBOARD_PASSWORD: z.string().min(8).optional(),
  DEMO_CARD_ATTEMPT_WINDOW_SECONDS: seconds(DEFAULT_LIMITS.cardAttemptWindowMs),
  DEMO_CARD_ATTEMPTS_PER_ORDER: count(DEFAULT_LIMITS.cardAttemptsPerOrder),
  DEMO_CARD_ATTEMPTS_PER_SESSION: count(DEFAULT_LIMITS.cardAttemptsPerSession),
  DEMO_CARD_ATTEMPTS_PER_CLIENT: count(DEFAULT_LIMITS.cardAttemptsPerClient),
  DEMO_LOGIN_FAILURES_PER_EMAIL: count(DEFAULT_LIMITS.loginFailuresPerEmail),
  DEMO_LOGIN_FAILURES_PER_CLIENT: count(DEFAULT_LIMITS.loginFailuresPerClient),
  DEMO_LOGIN_LOCKOUT_BASE_SECONDS: seconds(DEFAULT_LIMITS.loginLockoutBaseMs),
  DEMO_LOGIN_LOCKOUT_MAX_SECONDS: seconds(DEFAULT_LIMITS.loginLockoutMaxMs),
});

export interface DemoConfig {
  port: number;
  vaultUrl: string;
  /** The vault's data folder, where `demo-merchant.json` is. */
  dataDir: string;
  /** The shop's own data folder; a secret key rolled from the dashboard is saved there and wins over `demo-merchant.json`'s. */
  shopDataDir: string;
  dashboardPassword: string | undefined;
  /** Where the vault delivers the shop's events. */
  webhookUrl: string;
  limits: ShopLimits;
}

/** Where the shop receives the vault's webhooks. */
export const WEBHOOK_PATH = '/webhooks/tessera';

/** The receiver on the address the shop listens on: 127.0.0.1, not `localhost`, which may resolve to ::1 first. */
export const defaultWebhookUrl = (port: number) => `http://127.0.0.1:${port}${WEBHOOK_PATH}`;

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
    shopDataDir: shopDataDir(parsed.data.TESSERA_DATA_DIR, parsed.data.DEMO_DATA_DIR),
    dashboardPassword: parsed.data.DEMO_DASHBOARD_PASSWORD,
    webhookUrl: parsed.data.DEMO_WEBHOOK_URL ?? defaultWebhookUrl(parsed.data.DEMO_PORT),
    limits: {
      cardAttemptWindowMs: Math.round(parsed.data.DEMO_CARD_ATTEMPT_WINDOW_SECONDS * 1000),
      cardAttemptsPerOrder: parsed.data.DEMO_CARD_ATTEMPTS_PER_ORDER,
      cardAttemptsPerSession: parsed.data.DEMO_CARD_ATTEMPTS_PER_SESSION,
      cardAttemptsPerClient: parsed.data.DEMO_CARD_ATTEMPTS_PER_CLIENT,
      loginFailuresPerEmail: parsed.data.DEMO_LOGIN_FAILURES_PER_EMAIL,
      loginFailuresPerClient: parsed.data.DEMO_LOGIN_FAILURES_PER_CLIENT,
      loginLockoutBaseMs: Math.round(parsed.data.DEMO_LOGIN_LOCKOUT_BASE_SECONDS * 1000),
      loginLockoutMaxMs: Math.round(parsed.data.DEMO_LOGIN_LOCKOUT_MAX_SECONDS * 1000),
    },
  };
}

export const shopDataDir = (vaultDataDir: string, demoDataDir: string | undefined) => resolve(demoDataDir ?? join(vaultDataDir, 'demo'));

export const dashboardPasswordPath = (shopDataDir: string) => join(shopDataDir, 'dashboard-password');

/**
 * The dashboard password: `DEMO_DASHBOARD_PASSWORD`, else the one in
 * `<shop data>/dashboard-password`, generated (mode 0600) on first start;
 * `npm start` prints it.
 */
export function loadDashboardPassword(config: Pick<DemoConfig, 'shopDataDir' | 'dashboardPassword'>): string {
  if (config.dashboardPassword !== undefined) return config.dashboardPassword;
  const path = dashboardPasswordPath(config.shopDataDir);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    mkdirSync(config.shopDataDir, { recursive: true, mode: 0o700 });
    const password = randomBytes(12).toString('base64url');
    writeFileSync(path, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  }
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
