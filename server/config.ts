import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';

const durationSeconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('127.0.0.1'),
  TESSERA_DATA_DIR: z.string().min(1).default('.tessera'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must be a postgres:// URL')
    .optional(),
  TESSERA_MASTER_KEY: z.string().min(1).optional(),
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
  /** Failed authentications per minute per client address (IPv6: per /64) before it is refused with 429. */
  TESSERA_AUTH_FAILURES_PER_IP: z.coerce.number().int().positive().default(20),
  /** Vault processes sharing the port; more than one needs PostgreSQL (the embedded database has one owner). */
  TESSERA_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
});

export interface VaultConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  masterKey: string | undefined;
  adminKey: string | undefined;
  logLevel: z.infer<typeof EnvSchema>['TESSERA_LOG_LEVEL'];
  keyGraceSeconds: number;
  jwe: { maxAgeSeconds: number; maxFutureSeconds: number };
  rateLimits: { perIpPerMinute: number; perKeyPerMinute: number; authFailuresPerIpPerMinute: number };
  workers: number;
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
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: resolve(e.TESSERA_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    masterKey: e.TESSERA_MASTER_KEY,
    adminKey: e.TESSERA_ADMIN_KEY,
    logLevel: e.TESSERA_LOG_LEVEL,
    keyGraceSeconds: e.TESSERA_KEY_GRACE_SECONDS,
    jwe: { maxAgeSeconds: e.TESSERA_JWE_MAX_AGE_SECONDS, maxFutureSeconds: e.TESSERA_JWE_MAX_FUTURE_SECONDS },
    rateLimits: {
      perIpPerMinute: e.TESSERA_RATE_LIMIT_PER_IP,
      perKeyPerMinute: e.TESSERA_RATE_LIMIT_PER_KEY,
      authFailuresPerIpPerMinute: e.TESSERA_AUTH_FAILURES_PER_IP,
    },
    // PostgreSQL: one process per core, so HTTP and validation run on every core; embedded: the one owner.
    workers: e.TESSERA_WORKERS ?? (e.DATABASE_URL === undefined ? 1 : availableParallelism()),
  };
}
