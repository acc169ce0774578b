import { isIP } from 'node:net';
import { z } from 'zod';
import { containsCardNumber } from '../lib/card-number-scan.ts';
import { freeText, withApiCode } from '../lib/free-text.ts';
import { classifyAddress } from './addresses.ts';

/** The longest webhook URL accepted, as typed. */
export const WEBHOOK_URL_MAX_LENGTH = 2048;

export interface WebhookUrlPolicy {
  /**
   * `TESSERA_WEBHOOK_ALLOW_LOCAL=1`: also `http://` or `https://` to exactly
   * `localhost`, `127.0.0.1` or `[::1]` (development and tests). Nothing
   * else is relaxed: a name resolving to a loopback address stays refused.
   */
  allowLocal: boolean;
}

/** Why a URL was refused; fixed names, for the delivery's error and tests. */
export type WebhookUrlRefusal =
  | 'too_long'
  | 'card_number'
  | 'characters'
  | 'not_a_url'
  | 'scheme'
  | 'userinfo'
  | 'fragment'
  | 'port'
  | 'host'
  | 'address';

export type WebhookUrlCheck =
  | {
      ok: true;
      url: URL;
      /** The host to resolve, send as `Host` and as the TLS server name: lower case, punycode, IPv6 without brackets. */
      host: string;
      /** The host when it is an IP address itself: nothing is resolved. */
      literal: string | undefined;
      /** Under `allowLocal`, one of the loopback hosts it lets through. */
      local: boolean;
    }
  | { ok: false; reason: WebhookUrlRefusal };

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** At least two labels: a single label is completed from the vault's DNS search list, i.e. names inside its network. */
const PUBLIC_HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

/**
 * The syntactic half of the webhook URL policy, for registration and again
 * before every delivery (a URL stored under another policy is refused):
 *
 * - at most 2,048 characters, no card number, no white space, control
 *   characters or backslashes (which the URL parser would silently drop or
 *   turn into `/`, so the URL stored would not be the one typed);
 * - `https:` only; `http:` only to the loopback hosts under `allowLocal`;
 * - no userinfo (`user:pass@`), no fragment, no port 0;
 * - the host a DNS name of two or more letter/digit/hyphen labels (Unicode
 *   becomes punycode), not `localhost` or `*.localhost`; or an IP address
 *   that `classifyAddress` allows — so a literal loopback, private,
 *   link-local or IPv4-mapped address is refused here, without DNS.
 *
 * Names are resolved and their addresses checked at send time
 * (`resolveWebhookHost`).
 */
export function checkWebhookUrl(value: string, policy: WebhookUrlPolicy): WebhookUrlCheck {
  if (value.length > WEBHOOK_URL_MAX_LENGTH) return refuse('too_long');
  if (containsCardNumber(value)) return refuse('card_number');
  if (/[\s\p{C}\\]/u.test(value)) return refuse('characters');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse('not_a_url');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return refuse('scheme');
  if (url.username !== '' || url.password !== '' || /^[a-z]+:\/\/[^/?#]*@/i.test(value)) return refuse('userinfo');
  if (url.hash !== '' || value.includes('#')) return refuse('fragment');
  if (url.port === '0') return refuse('port');

  const local = policy.allowLocal && LOCAL_HOSTS.has(url.hostname);
  if (url.protocol === 'http:' && !local) return refuse('scheme');
  if (local) return { ok: true, url, host: bare(url.hostname), literal: isIP(bare(url.hostname)) ? bare(url.hostname) : undefined, local };

  const host = bare(url.hostname);
  if (isIP(host) !== 0) {
    return classifyAddress(host).allowed ? { ok: true, url, host, literal: host, local } : refuse('address');
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return refuse('address');
  if (!PUBLIC_HOSTNAME.test(host)) return refuse('host');
  return { ok: true, url, host, literal: undefined, local };
}

const refuse = (reason: WebhookUrlRefusal): WebhookUrlCheck => ({ ok: false, reason });
const bare = (hostname: string) => (hostname.startsWith('[') ? hostname.slice(1, -1) : hostname);

/**
 * A human sentence per refusal, for the 422 `webhook_url_not_allowed`
 * answer; fixed strings that never repeat the URL.
 */
export const REFUSAL_MESSAGES: Record<WebhookUrlRefusal | 'resolved_address', string> = {
  too_long: `Webhook URLs are at most ${WEBHOOK_URL_MAX_LENGTH} characters.`,
  card_number: 'This webhook URL looks like it holds a card number.',
  characters: 'Webhook URLs must not contain spaces, control characters or backslashes.',
  not_a_url: 'This webhook URL is not a valid absolute URL.',
  scheme: 'Webhook URLs must use https://.',
  userinfo: 'Webhook URLs must not contain a user name or password.',
  fragment: 'Webhook URLs must not contain a fragment (#…).',
  port: 'This webhook URL has an invalid port.',
  host: 'The host of a webhook URL must be a public DNS name or IP address.',
  address: 'Webhook URLs must not point to a loopback, private, link-local or reserved address.',
  resolved_address: 'This webhook URL resolves to a loopback, private, link-local or reserved address.',
};

/**
 * The `url` parameter of the webhook endpoint routes: `freeText` (bounded
 * first, a card number is 422 `card_number_not_allowed`), then
 * `checkWebhookUrl` (422 `webhook_url_not_allowed`). Its output is the URL
 * as the parser serializes it (`https://Hooks.Example/` → `https://hooks.example/`),
 * the form to store and send to.
 */
export function webhookUrlSchema(policy: WebhookUrlPolicy) {
  return freeText({ max: WEBHOOK_URL_MAX_LENGTH }).transform((value, ctx) => {
    const check = checkWebhookUrl(value, policy);
    if (!check.ok) {
      ctx.issues.push({ code: 'custom', input: value, message: REFUSAL_MESSAGES[check.reason], params: withApiCode('webhook_url_not_allowed') });
      return z.NEVER;
    }
    return check.url.href;
  });
}
