import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the signed
 * content is `{id}.{timestamp}.{body}`, the signature `v1,` + base64 of its
 * HMAC-SHA256 under the secret's bytes, and `webhook-signature` carries one
 * per live secret, space-separated, so a receiver holding either the old or
 * the new secret during a rotation accepts the message.
 *
 * Signed with node:crypto rather than the `standardwebhooks` package: the
 * package signs with a pure-JavaScript SHA-256 (`fast-sha256`) and is
 * CommonJS, for what is one HMAC call here. The tests verify every
 * signature with the package's `Webhook.verify`.
 */

const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;
/** Standard Webhooks secrets are 24 to 64 random bytes. */
const SECRET_SHAPE = /^whsec_((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/;
/** A message id travels in a header and inside the signed content, where a `.` would blur its end. */
const MESSAGE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** The key bytes of a `whsec_…` secret; a `TypeError` for anything else (secrets come from the vault, never from input). */
export function webhookSecretKey(secret: string): Buffer {
  const match = SECRET_SHAPE.exec(secret);
  const key = match === null ? undefined : Buffer.from(match[1]!, 'base64');
  if (key === undefined || key.length < 24 || key.length > 64) throw new TypeError('A webhook secret must be whsec_ and the base64 of 24 to 64 bytes');
  return key;
}

export interface SignedMessage {
  /** The event id; the same on every retry. */
  id: string;
  /** Unix time in seconds of this attempt. */
  timestamp: number;
  /** The exact bytes sent, as a string. */
  body: string;
}

/** `v1,<base64>` for one secret. */
export function signWebhook(message: SignedMessage, secret: string): string {
  if (!MESSAGE_ID.test(message.id)) throw new TypeError('A webhook message id must be 1 to 128 letters, digits, _ or -');
  if (!Number.isSafeInteger(message.timestamp) || message.timestamp < 0) throw new TypeError('A webhook timestamp must be whole seconds');
  const mac = createHmac('sha256', webhookSecretKey(secret)).update(`${message.id}.${message.timestamp}.${message.body}`, 'utf8');
  return `v1,${mac.digest('base64')}`;
}

/** The three Standard Webhooks headers, one signature per secret in the order given. */
export function webhookHeaders(message: SignedMessage, secrets: readonly string[]): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  if (secrets.length === 0) throw new TypeError('A webhook needs at least one live secret to be signed');
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(message.timestamp),
    'webhook-signature': secrets.map((secret) => signWebhook(message, secret)).join(' '),
  };
}
