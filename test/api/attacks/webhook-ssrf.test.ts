import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VaultError } from '../../../server/errors.ts';
import { assertWebhookUrlAllowed } from '../../../server/webhooks/resolve.ts';
import { WebhookSender, type WebhookSenderOptions } from '../../../server/webhooks/sender.ts';
import { newWebhookSecret } from '../../../server/webhooks/signature.ts';
import { makeTestCertificates, type TestCertificates } from '../../support/tls.ts';
import { startWebhookReceiver, stubResolver, type WebhookReceiver } from '../../support/webhook-receiver.ts';

/**
 * A merchant (or a stolen secret key) registers a webhook URL that points
 * the vault at its own network: loopback services, the cloud metadata
 * endpoint, private addresses, through literal addresses, DNS names, DNS
 * answers that change, and redirects. Internal services here are receivers
 * on loopback addresses; each test asserts they got no connection at all.
 */

let tls: TestCertificates;
/** What an internal service on the vault's host would be: it must never hear from the sender. */
let internal: WebhookReceiver;
/** The same, on the IPv6 loopback. */
let internalV6: WebhookReceiver;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  tls = await makeTestCertificates();
});
beforeEach(async () => {
  internal = await started(startWebhookReceiver({ tls }));
  internalV6 = await started(startWebhookReceiver({ tls, host: '::1', port: internal.port }));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started<T extends { close(): Promise<void> }>(thing: Promise<T>): Promise<T> {
  const value = await thing;
  cleanups.push(() => value.close());
  return value;
}

function sender(options: WebhookSenderOptions): WebhookSender {
  const made = new WebhookSender({ ca: tls.ca, ...options });
  cleanups.push(() => made.close());
  return made;
}

const message = (url: string) => ({ url, id: 'evt_ssrf', body: '{"id":"evt_ssrf"}', secrets: [newWebhookSecret()] });
const port = () => internal.port;
const nothingReached = () => {
  expect(internal.connections()).toBe(0);
  expect(internalV6.connections()).toBe(0);
};

/** URL, DNS answer for its host (if it has a name), and the error at send time. */
const ATTACKS: ReadonlyArray<readonly [what: string, url: () => string, answer: readonly string[] | undefined, error: string]> = [
  ['a name resolving to 127.0.0.1', () => `https://127.0.0.1.nip.io:${port()}/hooks`, ['127.0.0.1'], 'address_not_allowed'],
  ['a name resolving to ::1', () => `https://loopback.attacker.example:${port()}/hooks`, ['::1'], 'address_not_allowed'],
  ['a name resolving to an IPv4-mapped loopback', () => `https://mapped.attacker.example:${port()}/hooks`, ['::ffff:127.0.0.1'], 'address_not_allowed'],
  ['a name resolving to the metadata address', () => `https://metadata.attacker.example:${port()}/hooks`, ['169.254.169.254'], 'address_not_allowed'],
  ['a name resolving to the NAT64 form of a private address', () => `https://nat64.attacker.example:${port()}/hooks`, ['64:ff9b::a00:1'], 'address_not_allowed'],
  ['a name resolving to 0.0.0.0 (which reaches this host)', () => `https://zero.attacker.example:${port()}/hooks`, ['0.0.0.0'], 'address_not_allowed'],
  ['a name with one private among public addresses', () => `https://mixed.attacker.example:${port()}/hooks`, ['93.184.215.14', '10.0.0.1', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'], 'address_not_allowed'],
  ['a name with a loopback address after a public one', () => `https://mixed2.attacker.example:${port()}/hooks`, ['93.184.215.14', '127.0.0.1'], 'address_not_allowed'],
  ['localhost', () => `https://localhost:${port()}/hooks`, undefined, 'url_not_allowed'],
  ['an IPv4-mapped IPv6 literal of 127.0.0.1', () => `https://[::ffff:7f00:1]:${port()}/hooks`, undefined, 'url_not_allowed'],
  ['the IPv6 loopback', () => `https://[::1]:${port()}/hooks`, undefined, 'url_not_allowed'],
  ['127.0.0.1', () => `https://127.0.0.1:${port()}/hooks`, undefined, 'url_not_allowed'],
  ['127.0.0.1 as one decimal number', () => `https://2130706433:${port()}/hooks`, undefined, 'url_not_allowed'],
  ['the cloud metadata address', () => 'https://169.254.169.254/latest/meta-data/iam/security-credentials/', undefined, 'url_not_allowed'],
  ['a private address', () => 'https://10.0.0.1/hooks', undefined, 'url_not_allowed'],
  ['an IPv6 link-local address', () => 'https://[fe80::1]/hooks', undefined, 'url_not_allowed'],
  ['plain http to a public host', () => 'http://example.com/hooks', undefined, 'url_not_allowed'],
];

describe('SSRF through webhook URLs', () => {
  describe.each([false, true])('with TESSERA_WEBHOOK_ALLOW_LOCAL %s', (allowLocal) => {
    // What TESSERA_WEBHOOK_ALLOW_LOCAL is for: these very hosts (a number the URL parser reads as 127.0.0.1 is 127.0.0.1).
    const LOCAL = ['localhost', 'the IPv6 loopback', '127.0.0.1', '127.0.0.1 as one decimal number'];
    const attacks = allowLocal ? ATTACKS.filter(([what]) => !LOCAL.includes(what)) : ATTACKS;

    it.each(attacks)('refuses to send to %s, and connects nowhere', async (_what, url, answer, error) => {
      const resolver = stubResolver(answer ?? ['127.0.0.1']);
      const result = await sender({ allowLocal, resolver }).deliver(message(url()));
      expect(result).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error });
      expect(resolver.calls).toHaveLength(answer === undefined ? 0 : 1);
      nothingReached();
    });

    it.each(attacks)('refuses to register %s with 422 webhook_url_not_allowed', async (_what, url, answer) => {
      const refusal = assertWebhookUrlAllowed(url(), { allowLocal, resolver: stubResolver(answer ?? ['127.0.0.1']) });
      await expect(refusal).rejects.toThrow(VaultError);
      await expect(refusal).rejects.toMatchObject({ code: 'webhook_url_not_allowed', param: 'url' });
    });
  });

  it('connects to the address it checked, not to what DNS answers next (rebinding)', async () => {
    const checked = await started(startWebhookReceiver({ tls, host: '127.0.0.2', port: internal.port }));
    const resolver = stubResolver((call) => (call === 0 ? ['127.0.0.2'] : ['127.0.0.1']));
    const result = await sender({ allowLocal: true, resolver }).deliver(message(`https://localhost:${port()}/hooks`));
    expect(result).toEqual({ outcome: 'delivered', status: 200, latencyMs: expect.any(Number) });
    expect(checked.received).toHaveLength(1);
    expect(checked.received[0]).toMatchObject({ servername: 'localhost', headers: { host: `localhost:${port()}` } });
    expect(resolver.calls).toEqual(['localhost']);
    nothingReached();
  });

  it('checks a changed DNS answer again before the next delivery, and keeps no connection to the old address for it', async () => {
    const resolver = stubResolver((call) => (call === 0 ? ['127.0.0.1'] : ['169.254.169.254']));
    const send = sender({ allowLocal: true, resolver, resolutionTtlMs: 50 });
    expect((await send.deliver(message(`https://localhost:${port()}/hooks`))).outcome).toBe('delivered');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await send.deliver(message(`https://localhost:${port()}/hooks`))).toEqual({ outcome: 'retry', latencyMs: expect.any(Number), error: 'address_not_allowed' });
    expect(internal.received).toHaveLength(1);
    expect(resolver.calls).toEqual(['localhost', 'localhost']);
  });

  it.each([
    ['the loopback receiver', () => `https://127.0.0.1:${port()}/internal`],
    ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
    ['a relative location', () => '/internal'],
  ])('follows no redirect to %s: a 302 is a retry', async (_what, location) => {
    const merchant = await started(startWebhookReceiver({ tls, host: '127.0.0.2' }));
    merchant.answer((_request, response) => void response.writeHead(302, { location: location() }).end());
    const result = await sender({ allowLocal: true, resolver: stubResolver(['127.0.0.2']) }).deliver(message(`https://localhost:${merchant.port}/hooks`));
    expect(result).toEqual({ outcome: 'retry', status: 302, latencyMs: expect.any(Number), error: 'redirect_not_followed' });
    expect(merchant.received).toHaveLength(1);
    nothingReached();
  });

  describe('at registration', () => {
    it('accepts a public name and answers the URL to store', async () => {
      const url = await assertWebhookUrlAllowed('https://Hooks.Shop.Example/tessera', { allowLocal: false, resolver: stubResolver(['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c']) });
      expect(url).toBe('https://hooks.shop.example/tessera');
    });

    it('accepts a name that does not resolve yet: every delivery checks again', async () => {
      const resolver = stubResolver(() => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      });
      await expect(assertWebhookUrlAllowed('https://not-yet.shop.example/hooks', { allowLocal: false, resolver })).resolves.toBe('https://not-yet.shop.example/hooks');
    });

    it('accepts a name whose DNS does not answer in time', async () => {
      const options = { allowLocal: false, resolver: stubResolver('never'), resolveTimeoutMs: 100 };
      await expect(assertWebhookUrlAllowed('https://slow.shop.example/hooks', options)).resolves.toBe('https://slow.shop.example/hooks');
    });

    it('refuses a card number in the URL with 422 card_number_not_allowed', async () => {
      await expect(assertWebhookUrlAllowed('https://shop.example/4242424242424242', { allowLocal: false })).rejects.toMatchObject({
        code: 'card_number_not_allowed',
        param: 'url',
      });
    });

    it('says why in a fixed sentence that never repeats the URL', async () => {
      const refusal = await assertWebhookUrlAllowed('https://secret-name.attacker.example/hooks', { allowLocal: false, resolver: stubResolver(['10.1.2.3']) }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(VaultError);
      expect((refusal as VaultError).message).toBe('This webhook URL resolves to a loopback, private, link-local or reserved address.');
    });
  });
});
