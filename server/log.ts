import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Card numbers must never reach a log line. Handlers never log bodies, but as
 * a last line of defence every string that is logged has runs of 12 or more
 * digits (optionally spaced or dashed, as a card number is typed, or with
 * URL-encoded spaces, as in a logged path) masked, however long the run and
 * whatever it is glued to: a card number inside a longer run of digits is
 * still a card number.
 */
const PAN_LIKE = /\d(?:(?:[ -]|%20)?\d){11,}/g;

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(PAN_LIKE, '[redacted-number]');
  if (value instanceof Error) return scrub(serializeError(value), depth);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = scrub(item, depth + 1);
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
