import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { VaultError } from '../errors.ts';
import { classifyAddress } from './addresses.ts';
import { checkWebhookUrl, REFUSAL_MESSAGES, type WebhookUrlCheck, type WebhookUrlPolicy } from './url-policy.ts';

/**
 * Every address `host` resolves to, as IP address strings. Injectable so
 * tests can answer what a hostile DNS server would; the vault's is
 * `systemResolver`.
 */
export type Resolver = (host: string) => Promise<readonly string[]>;

/**
 * The operating system's resolver (`getaddrinfo`: `/etc/hosts`, then DNS),
 * the one every other client on the host uses, all answers in the order
 * given.
 */
export const systemResolver: Resolver = async (host) => (await lookup(host, { all: true })).map((answer) => answer.address);

export interface CheckedAddress {
  address: string;
  family: 4 | 6;
}

export type HostResolution =
  | { ok: true; addresses: readonly CheckedAddress[] }
  | { ok: false; error: 'dns_failure' | 'address_not_allowed'; range?: string };

/**
 * The addresses a webhook for `check` may be sent to: resolved once, and
 * refused whole when any answer is not allowed. Using only the good answers
 * would let a name that mixes a public and a private address (DNS rebinding
 * by several records) work some of the time; refusing it makes a
 * misconfigured or hostile name fail every time, visibly.
 *
 * Under `allowLocal`, `localhost` must resolve to loopback addresses only.
 * An IP literal is not resolved (it was classified by `checkWebhookUrl`).
 */
export async function resolveWebhookHost(check: Extract<WebhookUrlCheck, { ok: true }>, resolver: Resolver): Promise<HostResolution> {
  if (check.literal !== undefined) {
    const verdict = classifyAddress(check.literal);
    if (verdict.allowed) return { ok: true, addresses: [{ address: verdict.connectTo, family: verdict.family }] };
    if (check.local) return { ok: true, addresses: [{ address: check.literal, family: isIP(check.literal) as 4 | 6 }] };
    return { ok: false, error: 'address_not_allowed', range: verdict.range };
  }
  let answers: readonly string[];
  try {
    answers = await resolver(check.host);
  } catch {
    return { ok: false, error: 'dns_failure' };
  }
  if (answers.length === 0) return { ok: false, error: 'dns_failure' };
  const addresses: CheckedAddress[] = [];
  for (const answer of answers) {
    if (check.local) {
      if (!isLoopback(answer)) return { ok: false, error: 'address_not_allowed', range: 'not loopback (localhost)' };
      addresses.push({ address: answer, family: isIP(answer) as 4 | 6 });
      continue;
    }
    const verdict = classifyAddress(answer);
    if (!verdict.allowed) return { ok: false, error: 'address_not_allowed', range: verdict.range };
    if (!addresses.some((known) => known.address === verdict.connectTo)) addresses.push({ address: verdict.connectTo, family: verdict.family });
  }
  return { ok: true, addresses };
}

/** 127.0.0.0/8 or ::1, written plainly (an IPv4-mapped loopback is named `loopback (IPv4-mapped)`). */
const isLoopback = (address: string) => {
  const verdict = classifyAddress(address);
  return !verdict.allowed && verdict.range === 'loopback';
};

export interface RegistrationCheckOptions extends WebhookUrlPolicy {
  resolver?: Resolver;
  /** How long to wait for DNS before accepting the URL anyway; 2 s unless said. */
  resolveTimeoutMs?: number;
}

/**
 * The check for `POST`/`PATCH /v1/webhook-endpoints`: the syntactic policy,
 * then the host's current addresses, so a name that resolves to a private
 * address (`127.0.0.1.nip.io`) is refused at once rather than failing every
 * delivery. A name that does not resolve (yet), or not within
 * `resolveTimeoutMs`, is accepted: DNS may be set up after the endpoint,
 * and every delivery checks again. Returns the URL to store; throws 422
 * `webhook_url_not_allowed` with `param`.
 */
export async function assertWebhookUrlAllowed(value: string, options: RegistrationCheckOptions, param = 'url'): Promise<string> {
  const check = checkWebhookUrl(value, options);
  if (!check.ok) {
    const code = check.reason === 'card_number' ? 'card_number_not_allowed' : 'webhook_url_not_allowed';
    throw new VaultError(code, { param, ...(code === 'webhook_url_not_allowed' ? { message: REFUSAL_MESSAGES[check.reason] } : {}) });
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, options.resolveTimeoutMs ?? 2_000, undefined);
  });
  const resolution = await Promise.race([resolveWebhookHost(check, options.resolver ?? systemResolver), timedOut]).finally(() => clearTimeout(timer));
  if (resolution?.ok === false && resolution.error === 'address_not_allowed') {
    throw new VaultError('webhook_url_not_allowed', { param, message: REFUSAL_MESSAGES.resolved_address });
  }
  return check.url.href;
}
