import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Card numbers must never reach a log line. Handlers never log bodies, but as
 * a last line of defence every string that is logged (and every key) has its
 * runs of 12 or more digits masked, optionally spaced or dashed as a card
 * number is typed (or with URL-encoded spaces, as in a logged path),
 * wherever they stand: inside a token name
 * (`tok_4242424242424242`), a path or a word, not only between word
 * boundaries. A run longer than 19 digits is masked whole, since a card
 * number could be part of it.
 *
 * One exception: a field named `hash` holding exactly 64 lowercase hex
 * digits, a SHA-256 digest the vault computed — the audit chain head it logs
 * for operators to write down as a witness. About one digest in fourteen
 * holds a run of 12 decimal digits by chance (7.1 % of 200,000 random ones),
 * and masking it made the witness useless (`tessera audit verify --expect`
 * refused it; the audit-chain test's rare failure).
 */
const PAN_LIKE = /\d(?:(?:[ -]|%20)?\d){11,}/g;
const MASK = '[redacted-number]';
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Deeper than this, an object is not logged at all rather than logged unmasked. */
const MAX_DEPTH = 8;

/** The same masking for text stored outside the log (a job's last error). */
export const maskNumbers = (text: string): string => text.replace(PAN_LIKE, MASK);
const mask = maskNumbers;

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return mask(value);
  if (value instanceof Error) return scrub(serializeError(value), depth);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too-deep]';
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[mask(key)] = key === 'hash' && typeof item === 'string' && SHA256_HEX.test(item) ? item : scrub(item, depth + 1);
  }
  return out;
}

/** Error fields safe to log: never arbitrary enumerable properties (body-parser errors carry the raw body). */
function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return {
    type: error.name,
    message: error.message,
    code: (error as { code?: unknown }).code,
    stack: error.stack,
  };
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'tessera-vault' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: serializeError },
      // Keys that could hold secrets if a future caller logs a request-shaped object.
      redact: {
        paths: [
          'authorization',
          'headers.authorization',
          'req.headers.authorization',
          'body',
          'req.body',
          'card',
          'cvc',
          'number',
          'secret_key',
          'admin_key',
        ],
        censor: '[redacted]',
      },
      hooks: {
        logMethod(args, method) {
          const [first, ...rest] = args;
          method.apply(this, [scrub(first), ...rest.map((item) => scrub(item))] as Parameters<typeof method>);
        },
      },
    },
    options.destination,
  );
}
