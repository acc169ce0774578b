import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import type { CvcPolicy } from './keys/cvc-keys.ts';
import type { DeclineLimits } from './velocity/declines.ts';
import type { HttpTimeouts } from './http/server.ts';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** `200ms`, `5s`, `30m`, `2h` in milliseconds. */
const durationMs = (text: string): number => {
  const [, amount, unit] = /^(\d+)(ms|s|m|h)$/.exec(text)!;
  return Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
};

const durationSeconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Express's `trust proxy` as the vault accepts it: off, a number of hops, or the proxies' addresses and subnets. */
export type TrustProxy = false | number | string[];

const MAX_PROXY_HOPS = 10;
/** The subnets Express (proxy-addr) knows by name. */
const PROXY_SUBNET_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An address (IPv4 in four decimal parts, or IPv6), optionally with a prefix length, or a subnet name. */
function isProxyAddress(entry: string): boolean {
  if (PROXY_SUBNET_NAMES.has(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  if (rest.length > 0) return false;
  const ipv4 = ipaddr.IPv4.isValidFourPartDecimal(address);
  if (!ipv4 && !ipaddr.IPv6.isValid(address)) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (ipv4 ? 32 : 128);
}

/** Every variable the vault reads, each on its own. */
const VaultEnv = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  TESSERA_DATA_DIR: z.string().min(1).default('.tessera'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must be a postgres:// URL')
    .optional(),
  TESSERA_MASTER_KEY: z.string().min(1).optional(),
  /** Master keys being replaced (base64, comma-separated): they still unwrap until `tessera keys rewrap` has moved everything. */
  TESSERA_MASTER_KEY_PREVIOUS: z
    .string()
    .optional()
    .transform((value) => (value ?? '').split(',').map((key) => key.trim()).filter(Boolean)),
  TESSERA_ADMIN_KEY: z.string().min(24, 'TESSERA_ADMIN_KEY must be at least 24 characters').optional(),
  TESSERA_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long a retired transport key keeps decrypting after `keys rotate`. */
  TESSERA_KEY_GRACE_SECONDS: durationSeconds(24 * 3600),
  /** Allowed clock skew for a JWE's `iat` in the future, and its maximum age. */
  TESSERA_JWE_MAX_AGE_SECONDS: durationSeconds(600),
  TESSERA_JWE_MAX_FUTURE_SECONDS: durationSeconds(60),
  /** Requests per minute per client IP and per publishable key on the card-fields endpoints. */
  TESSERA_RATE_LIMIT_PER_IP: z.coerce.number().int().positive().default(300),
  TESSERA_RATE_LIMIT_PER_KEY: z.coerce.number().int().positive().default(3000),
  /** How long a CVC may wait for its first authorization, and the width of the buckets that share a CVC key. */
  TESSERA_CVC_LIFETIME_SECONDS: durationSeconds(30 * 60),
  TESSERA_CVC_BUCKET_SECONDS: durationSeconds(10 * 60),
  /** Card-testing limits: declines per card-fields session, client IP and card within one window. */
  TESSERA_DECLINES_PER_SESSION: z.coerce.number().int().positive().default(3),
  TESSERA_DECLINES_PER_IP: z.coerce.number().int().positive().default(10),
  TESSERA_DECLINES_PER_CARD: z.coerce.number().int().positive().default(5),
  TESSERA_DECLINE_WINDOW_SECONDS: durationSeconds(3600),
  /** Housekeeping round: erasure, key destruction, re-encryption batches. */
  TESSERA_MAINTENANCE_SECONDS: durationSeconds(60),
  /** How long the vault waits on a slow client (see `server/http/server.ts`), in milliseconds. */
  TESSERA_HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  TESSERA_HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  TESSERA_HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
  TESSERA_HTTP_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  /** Failed authentications per minute per client address (IPv6: per /64) before it is refused with 429. */
  TESSERA_AUTH_FAILURES_PER_IP: z.coerce.number().int().positive().default(20),
  /** `1` lets webhook endpoints be http://localhost or 127.0.0.1 (development and tests only; `npm start` sets it). */
  TESSERA_WEBHOOK_ALLOW_LOCAL: z.enum(['0', '1']).default('0'),
  /** The waits between a webhook's attempts, e.g. `200ms,400ms,800ms` (default: the contract's 5 s … 10 h). */
  TESSERA_WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .regex(/^\d+(ms|s|m|h)(,\d+(ms|s|m|h))*$/, 'must be durations like 5s,5m,30m,2h')
    .default('5s,5m,30m,2h,5h,10h,10h')
    .transform((text) => text.split(',').map(durationMs)),
  /** Background jobs: the safety-net poll behind LISTEN/NOTIFY, and how long a claim holds without renewal. */
  TESSERA_JOB_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  TESSERA_JOB_LEASE_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** The sandbox token services' simulated latency in milliseconds: `120`, or a range `50-300` (the default). */
  TESSERA_SANDBOX_TSP_DELAY_MS: z
    .string()
    .regex(/^\d{1,5}(-\d{1,5})?$/, 'must be milliseconds like 100 or a range like 50-300')
    .default('50-300')
    .transform((text) => {
      const [min, max = min] = text.split('-').map(Number) as [number, number?];
      return { min: Math.min(min, max), max: Math.max(min, max) };
    }),
  /**
   * The waits between a network token provisioning's attempts, e.g. `10ms` (tests); unset: the jobs' default backoff (1 s
   * doubling). The last wait repeats; after the 10th attempt the network token is settled `declined`.
   */
  TESSERA_NETWORK_TOKEN_RETRY_SCHEDULE: z
    .string()
    .regex(/^\d+(ms|s|m|h)(,\d+(ms|s|m|h))*$/, 'must be durations like 10ms or 1s,5s,30s')
    .optional()
    .transform((text) => text?.split(',').map(durationMs)),
  /**
   * Per vault process: how many background network tokens may be at the token services at once (provisioned in memory,
   * and as many `network_token.provision` jobs), and how many more may wait their turn in memory before a new one goes
   * to a job at once (a network down for long, a flood). Politeness to the networks and a bound on memory, not rules
   * across processes. 256: provisioning mostly waits on the token service (50–300 ms in the sandbox, seconds at a real
   * one) and, on PGlite, for the requests in flight before each of its statements (up to 50 ms each); 48 held a process
   * to ~270 a second at the sandbox's latency, below what one vault tokenizes, and 128 would be near it again.
   */
  TESSERA_NETWORK_TOKEN_CONCURRENCY: z.coerce.number().int().min(1).max(4096).default(256),
  TESSERA_NETWORK_TOKEN_MAX_WAITING: z.coerce.number().int().min(0).max(1_000_000).default(4096),
  /**
   * Which peers may tell the client's address in `X-Forwarded-For` (Express's
   * `trust proxy`): a number of proxy hops in front of the vault, or the
   * proxies' addresses and subnets (`10.0.0.0/8,loopback`). Unset: nobody —
   * the client is the connection's peer.
   */
  TESSERA_TRUST_PROXY: z
    .string()
    .optional()
    .transform((value, ctx): TrustProxy => {
      const text = (value ?? '').trim();
      if (text === '' || text === 'false' || text === '0') return false;
      if (/^\d+$/.test(text)) {
        const hops = Number(text);
        if (hops <= MAX_PROXY_HOPS) return hops;
        ctx.addIssue({ code: 'custom', message: `at most ${MAX_PROXY_HOPS} proxy hops` });
        return z.NEVER;
      }
      const entries = text.split(',').map((entry) => entry.trim());
      const wrong = entries.find((entry) => !isProxyAddress(entry));
      if (wrong === undefined) return entries;
      ctx.addIssue({
        code: 'custom',
        message:
          text === 'true'
            ? '`true` would believe whatever X-Forwarded-For any client sends; give the number of proxy hops or the proxies\' addresses'
            : 'must be a number of proxy hops, or IP addresses, CIDR subnets and loopback / linklocal / uniquelocal, comma-separated',
      });
      return z.NEVER;
    }),
  /** How often real time looks for subscription charges that came due (the sandbox clock's advance runs them at once). */
  TESSERA_SUBSCRIPTION_SCAN_MS: z.coerce.number().int().min(50).max(3_600_000).default(60_000),
  /** The sandbox acquirer's simulated latency per authorization (0: none). */
  TESSERA_SANDBOX_ACQUIRER_DELAY_MS: z.coerce.number().int().min(0).max(10_000).default(0),
  /** Threads that decrypt the cards of token batches (default: one per core). */
  TESSERA_DECRYPT_THREADS: z.coerce.number().int().min(1).max(64).optional(),
  /** Vault processes sharing the port; more than one needs PostgreSQL (the embedded database has one owner). */
  TESSERA_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  /**
   * The vault's public origin (e.g. `https://vault.example.com`): payment links' URLs and the hosted page's
   * card fields use it. Unset, the origin a request was made to (its Host header) stands in.
   */
  TESSERA_PUBLIC_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .transform((url) => (url === undefined ? undefined : new URL(url).origin)),
  /** `production` turns the development conveniences off: no generated key files, no demo merchant. */
  NODE_ENV: z.string().optional(),
});

/** The vault's variables, with the rules that tie several together. */
const EnvSchema = VaultEnv.superRefine((e, ctx) => {
  if (e.NODE_ENV !== 'production') return;
  // Keys generated into the data folder sit in plain files next to the data they protect.
  if (e.TESSERA_MASTER_KEY === undefined) {
    ctx.addIssue({ code: 'custom', path: ['TESSERA_MASTER_KEY'], message: 'required when NODE_ENV=production (no development key file is made)' });
  }
  if (e.TESSERA_ADMIN_KEY === undefined) {
    ctx.addIssue({ code: 'custom', path: ['TESSERA_ADMIN_KEY'], message: 'required when NODE_ENV=production (no admin.key file is made)' });
  }
});

export interface VaultConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  masterKey: string | undefined;
  previousMasterKeys: string[];
  adminKey: string | undefined;
  logLevel: z.infer<typeof EnvSchema>['TESSERA_LOG_LEVEL'];
  keyGraceSeconds: number;
  jwe: { maxAgeSeconds: number; maxFutureSeconds: number };
  rateLimits: { perIpPerMinute: number; perKeyPerMinute: number; authFailuresPerIpPerMinute: number };
  trustProxy: TrustProxy;
  cvc: CvcPolicy;
  declines: DeclineLimits;
  maintenanceSeconds: number;
  jobs: { pollMs: number; leaseMs: number };
  webhooks: { allowLocal: boolean; retrySchedule: number[] };
  /** The sandbox token services' latency, drawn between min and max for each request. */
  sandboxTspDelayMs: { min: number; max: number };
  /** Waits between a provisioning's attempts (the last repeats); undefined: the jobs' default backoff. */
  networkTokenRetryScheduleMs: number[] | undefined;
  /** Background network tokens per process: at the token services at once, and waiting in memory beyond those. */
  networkTokenBackground: { concurrency: number; maxWaiting: number };
  subscriptions: { scanMs: number };
  sandbox: { acquirerDelayMs: number };
  workers: number;
  /** Worker threads of the card decrypt pool (token batches). */
  decryptThreads: number;
  http: HttpTimeouts;
  /** `TESSERA_PUBLIC_URL`'s origin, if set. */
  publicOrigin: string | undefined;
  /** `NODE_ENV=production`: keys only from the environment, and no demo merchant. */
  production: boolean;
}

/** Parses the environment once at boot; a bad value stops the vault with a message naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): VaultConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid vault configuration:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  if (e.TESSERA_WORKERS !== undefined && e.TESSERA_WORKERS > 1 && e.DATABASE_URL === undefined) {
    throw new Error('Invalid vault configuration:\n  TESSERA_WORKERS: more than one worker needs DATABASE_URL (PostgreSQL)');
  }
  if (e.TESSERA_HTTP_HEADERS_TIMEOUT_MS > e.TESSERA_HTTP_REQUEST_TIMEOUT_MS) {
    throw new Error('Invalid vault configuration:\n  TESSERA_HTTP_HEADERS_TIMEOUT_MS: must not be more than TESSERA_HTTP_REQUEST_TIMEOUT_MS');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: resolve(e.TESSERA_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    masterKey: e.TESSERA_MASTER_KEY,
    previousMasterKeys: e.TESSERA_MASTER_KEY_PREVIOUS,
    adminKey: e.TESSERA_ADMIN_KEY,
    logLevel: e.TESSERA_LOG_LEVEL,
    keyGraceSeconds: e.TESSERA_KEY_GRACE_SECONDS,
    jwe: { maxAgeSeconds: e.TESSERA_JWE_MAX_AGE_SECONDS, maxFutureSeconds: e.TESSERA_JWE_MAX_FUTURE_SECONDS },
    rateLimits: {
      perIpPerMinute: e.TESSERA_RATE_LIMIT_PER_IP,
      perKeyPerMinute: e.TESSERA_RATE_LIMIT_PER_KEY,
      authFailuresPerIpPerMinute: e.TESSERA_AUTH_FAILURES_PER_IP,
    },
    trustProxy: e.TESSERA_TRUST_PROXY,
    cvc: { lifetimeSeconds: e.TESSERA_CVC_LIFETIME_SECONDS, bucketSeconds: e.TESSERA_CVC_BUCKET_SECONDS },
    declines: {
      perSession: e.TESSERA_DECLINES_PER_SESSION,
      perIp: e.TESSERA_DECLINES_PER_IP,
      perCard: e.TESSERA_DECLINES_PER_CARD,
      windowSeconds: e.TESSERA_DECLINE_WINDOW_SECONDS,
    },
    maintenanceSeconds: e.TESSERA_MAINTENANCE_SECONDS,
    jobs: { pollMs: e.TESSERA_JOB_POLL_MS, leaseMs: e.TESSERA_JOB_LEASE_MS },
    webhooks: { allowLocal: e.TESSERA_WEBHOOK_ALLOW_LOCAL === '1', retrySchedule: e.TESSERA_WEBHOOK_RETRY_SCHEDULE },
    sandboxTspDelayMs: e.TESSERA_SANDBOX_TSP_DELAY_MS,
    networkTokenRetryScheduleMs: e.TESSERA_NETWORK_TOKEN_RETRY_SCHEDULE,
    networkTokenBackground: { concurrency: e.TESSERA_NETWORK_TOKEN_CONCURRENCY, maxWaiting: e.TESSERA_NETWORK_TOKEN_MAX_WAITING },
    subscriptions: { scanMs: e.TESSERA_SUBSCRIPTION_SCAN_MS },
    sandbox: { acquirerDelayMs: e.TESSERA_SANDBOX_ACQUIRER_DELAY_MS },
    // PostgreSQL: one process per core, so HTTP and validation run on every core; embedded: the one owner.
    workers: e.TESSERA_WORKERS ?? (e.DATABASE_URL === undefined ? 1 : availableParallelism()),
    // A batch's decryption may use every core: the pool's threads only work while a batch runs.
    decryptThreads: e.TESSERA_DECRYPT_THREADS ?? availableParallelism(),
    production: e.NODE_ENV === 'production',
    publicOrigin: e.TESSERA_PUBLIC_URL,
    http: {
      headersMs: e.TESSERA_HTTP_HEADERS_TIMEOUT_MS,
      requestMs: e.TESSERA_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveMs: e.TESSERA_HTTP_KEEP_ALIVE_TIMEOUT_MS,
      idleMs: e.TESSERA_HTTP_IDLE_TIMEOUT_MS,
    },
  };
}

/** What `npm run tessera` needs: where the vault is, and its admin key (or where the vault wrote it). */
export interface CliConfig {
  vaultUrl: string;
  adminKey: string | undefined;
  /** A merchant's secret key, for the merchant's commands (`tokens import`). */
  secretKey: string | undefined;
  dataDir: string;
}

const CliEnv = VaultEnv.pick({ PORT: true, TESSERA_DATA_DIR: true, TESSERA_ADMIN_KEY: true }).extend({
  /** The vault as the CLI reaches it; by default on this machine at `PORT`. */
  TESSERA_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The merchant's secret key for `tokens import` (or `--secret-key-file`); never an argument, which `ps` and shell history would show. */
  TESSERA_SECRET_KEY: z.string().regex(/^sk_test_[0-9A-Za-z]{20,64}$/, 'must be a secret key (sk_test_…)').optional(),
});

/** The CLI's configuration, parsed by the same schema as the vault's (the variables mean the same in both). */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const parsed = CliEnv.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  return {
    vaultUrl: (e.TESSERA_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, ''),
    adminKey: e.TESSERA_ADMIN_KEY,
    secretKey: e.TESSERA_SECRET_KEY,
    dataDir: resolve(e.TESSERA_DATA_DIR),
  };
}
