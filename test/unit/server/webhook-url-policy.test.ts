import { statusOf } from '../../../server/http/error-response.ts';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { VaultError } from '../../../server/errors.ts';
import { parseInput } from '../../../server/http/errors.ts';
import { checkWebhookUrl, webhookUrlSchema } from '../../../server/webhooks/url-policy.ts';

const strict = { allowLocal: false };
const local = { allowLocal: true };

describe('webhook URL policy', () => {
  it.each([
    ['https://hooks.shop.example/tessera', 'https://hooks.shop.example/tessera', 'hooks.shop.example'],
    ['https://hooks.shop.example', 'https://hooks.shop.example/', 'hooks.shop.example'],
    ['https://Hooks.Shop.Example:8443/a/b?x=1&y=2', 'https://hooks.shop.example:8443/a/b?x=1&y=2', 'hooks.shop.example'],
    ['https://hooks.shop.example:443/x', 'https://hooks.shop.example/x', 'hooks.shop.example'],
    ['https://bücher.example/hook', 'https://xn--bcher-kva.example/hook', 'xn--bcher-kva.example'],
    ['https://8.8.8.8/hook', 'https://8.8.8.8/hook', '8.8.8.8'],
    ['https://[2606:4700:4700::1111]/hook', 'https://[2606:4700:4700::1111]/hook', '2606:4700:4700::1111'],
    ['https://my-shop.co.uk/webhooks/tessera?key=abc', 'https://my-shop.co.uk/webhooks/tessera?key=abc', 'my-shop.co.uk'],
  ])('accepts %s as %s', (input, href, host) => {
    const check = checkWebhookUrl(input, strict);
    expect(check).toMatchObject({ ok: true, host, local: false });
    expect(check.ok && check.url.href).toBe(href);
  });

  it.each([
    ['plain http to a public host', 'http://example.com/hook', 'scheme'],
    ['plain http to localhost', 'http://localhost:4100/hook', 'scheme'],
    ['plain http to 127.0.0.1', 'http://127.0.0.1:4100/hook', 'scheme'],
    ['another scheme', 'ftp://example.com/hook', 'scheme'],
    ['a file URL', 'file:///etc/passwd', 'scheme'],
    ['a javascript URL', 'javascript:alert(1)', 'scheme'],
    ['a relative URL', '/hooks', 'not_a_url'],
    ['no host', 'https://', 'not_a_url'],
    ['an empty string', '', 'not_a_url'],
    ['a user name and password', 'https://user:pass@example.com/hook', 'userinfo'],
    ['an empty userinfo', 'https://@example.com/hook', 'userinfo'],
    ['a user name that hides the host', 'https://example.com@10.0.0.1/hook', 'userinfo'],
    ['a fragment', 'https://example.com/hook#x', 'fragment'],
    ['an empty fragment', 'https://example.com/hook#', 'fragment'],
    ['port 0', 'https://example.com:0/hook', 'port'],
    ['a backslash the parser turns into a slash', 'https://evil.example\\@good.example/hook', 'characters'],
    ['a space', 'https://example.com/a hook', 'characters'],
    ['a line break the parser would drop', 'https://exa\nmple.com/hook', 'characters'],
    ['a tab', 'https://example.com/\thook', 'characters'],
    ['a leading space', ' https://example.com/hook', 'characters'],
    ['a NUL', 'https://example.com/\u0000', 'characters'],
    ['a zero-width space', 'https://exa\u200bmple.com/hook', 'characters'],
    ['localhost', 'https://localhost/hook', 'address'],
    ['a localhost subdomain', 'https://api.localhost/hook', 'address'],
    ['a single-label name (completed from the DNS search list)', 'https://intranet/hook', 'host'],
    ['a trailing dot', 'https://example.com./hook', 'host'],
    ['an underscore', 'https://my_shop.example/hook', 'host'],
    ['a label starting with a hyphen', 'https://-shop.example/hook', 'host'],
    ['a label of 64 characters', `https://${'a'.repeat(64)}.example/hook`, 'host'],
    ['the loopback address', 'https://127.0.0.1/hook', 'address'],
    ['a loopback address written short', 'https://127.1/hook', 'address'],
    ['a loopback address in hexadecimal', 'https://0x7f.0.0.1/hook', 'address'],
    ['a loopback address as one number', 'https://2130706433/hook', 'address'],
    ['the IPv6 loopback', 'https://[::1]/hook', 'address'],
    ['an IPv4-mapped loopback', 'https://[::ffff:7f00:1]/hook', 'address'],
    ['an IPv4-mapped loopback, dotted', 'https://[::ffff:127.0.0.1]/hook', 'address'],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data/', 'address'],
    ['a private address', 'https://10.0.0.1/hook', 'address'],
    ['another private address', 'https://192.168.1.1/hook', 'address'],
    ['a carrier-grade NAT address', 'https://100.64.0.1/hook', 'address'],
    ['the unspecified address', 'https://0.0.0.0/hook', 'address'],
    ['an IPv6 link-local address', 'https://[fe80::1]/hook', 'address'],
    ['an IPv6 unique local address', 'https://[fd00::1]/hook', 'address'],
    ['a NAT64 form of a private address', 'https://[64:ff9b::a00:1]/hook', 'address'],
    ['a 6to4 form of the metadata address', 'https://[2002:a9fe:a9fe::1]/hook', 'address'],
    ['a multicast address', 'https://224.0.0.1/hook', 'address'],
    ['the broadcast address', 'https://255.255.255.255/hook', 'address'],
    ['a card number in the path', 'https://example.com/hooks/4242424242424242', 'card_number'],
    ['a spaced card number in the query', 'https://example.com/hooks?c=4242 4242 4242 4242', 'card_number'],
    ['2,049 characters', `https://example.com/${'a'.repeat(2029)}`, 'too_long'],
  ])('refuses %s', (_what, input, reason) => {
    expect(checkWebhookUrl(input, strict)).toEqual({ ok: false, reason });
  });

  it('accepts a URL of 2,048 characters', () => {
    const url = `https://example.com/${'a'.repeat(2028)}`;
    expect(url).toHaveLength(2048);
    expect(checkWebhookUrl(url, strict).ok).toBe(true);
  });

  describe('with TESSERA_WEBHOOK_ALLOW_LOCAL', () => {
    it.each([
      ['http://localhost:4100/hooks', 'localhost', undefined],
      ['http://127.0.0.1:4100/hooks', '127.0.0.1', '127.0.0.1'],
      ['http://[::1]:4100/hooks', '::1', '::1'],
      ['https://localhost:4100/hooks', 'localhost', undefined],
      ['https://127.0.0.1/hooks', '127.0.0.1', '127.0.0.1'],
      ['https://[::1]/hooks', '::1', '::1'],
      ['http://LOCALHOST:4100/hooks', 'localhost', undefined],
    ])('accepts %s', (input, host, literal) => {
      expect(checkWebhookUrl(input, local)).toMatchObject({ ok: true, host, literal, local: true });
    });

    it.each([
      ['plain http to a public host', 'http://example.com/hook', 'scheme'],
      ['plain http to a name that starts with localhost', 'http://localhost.evil.example/hook', 'scheme'],
      ['another loopback address', 'https://127.0.0.2/hook', 'address'],
      ['plain http to another loopback address', 'http://127.0.0.2/hook', 'scheme'],
      ['an IPv4-mapped loopback', 'https://[::ffff:7f00:1]/hook', 'address'],
      ['the metadata address', 'https://169.254.169.254/hook', 'address'],
      ['a private address', 'https://10.0.0.1/hook', 'address'],
      ['a localhost subdomain', 'https://api.localhost/hook', 'address'],
      ['userinfo on localhost', 'http://user@localhost/hook', 'userinfo'],
    ])('still refuses %s', (_what, input, reason) => {
      expect(checkWebhookUrl(input, local)).toEqual({ ok: false, reason });
    });
  });

  describe('as the url parameter of a request', () => {
    const Body = z.strictObject({ url: webhookUrlSchema(strict) });
    const refusal = (url: unknown) => {
      try {
        parseInput(Body, { url });
      } catch (error) {
        if (error instanceof VaultError) return { status: statusOf(error), code: error.code, param: error.param };
        throw error;
      }
      throw new Error('accepted');
    };

    it('answers the URL as the parser serializes it', () => {
      expect(parseInput(Body, { url: 'https://Hooks.Example:443/x' })).toEqual({ url: 'https://hooks.example/x' });
    });

    it.each([
      ['http://example.com/hook'],
      ['https://127.0.0.1/hook'],
      ['https://[::ffff:7f00:1]/hook'],
      ['https://169.254.169.254/'],
      ['https://user:pass@example.com/'],
      ['not a url'],
    ])('refuses %s with 422 webhook_url_not_allowed', (url) => {
      expect(refusal(url)).toEqual({ status: 422, code: 'webhook_url_not_allowed', param: 'url' });
    });

    it('refuses a card number in the URL with 422 card_number_not_allowed, like every other text', () => {
      expect(refusal('https://example.com/4242-4242-4242-4242')).toEqual({ status: 422, code: 'card_number_not_allowed', param: 'url' });
    });

    it('refuses a URL longer than 2,048 characters before looking at it', () => {
      expect(refusal(`https://example.com/${'4'.repeat(60_000)}`)).toEqual({ status: 400, code: 'parameter_invalid', param: 'url' });
    });

    it('refuses a URL that is not a string', () => {
      expect(refusal(42)).toEqual({ status: 400, code: 'parameter_invalid', param: 'url' });
    });
  });
});
