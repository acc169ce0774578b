import { describe, expect, it } from 'vitest';
import { canonicalOrigin } from '../../../server/merchants/origin.ts';
import { SINGLE_ORIGIN } from '../../support/csp.ts';

describe('allowed origins', () => {
  it.each([
    ['https://shop.example', 'https://shop.example'],
    ['https://m.shop.example:8443', 'https://m.shop.example:8443'],
    ['https://Shop.Example', 'https://shop.example'],
    ['HTTPS://shop.example', 'https://shop.example'],
    ['https://shop.example:443', 'https://shop.example'],
    ['https://bücher.example', 'https://xn--bcher-kva.example'],
    ['https://xn--bcher-kva.example', 'https://xn--bcher-kva.example'],
    ['https://ＳＨＯＰ.example', 'https://shop.example'],
    ['https://203.0.113.7', 'https://203.0.113.7'],
    ['http://localhost:4100', 'http://localhost:4100'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://[::1]:3000', 'http://[::1]:3000'],
    ['https://[::1]', 'https://[::1]'],
  ])('accepts %s as %s', (input, expected) => {
    expect(canonicalOrigin(input)).toBe(expected);
  });

  it.each([
    ['a wildcard host', 'https://*'],
    ['a wildcard subdomain', 'https://*.shop.example'],
    ['a fullwidth asterisk that IDNA maps to *', 'https://＊.shop.example'],
    ['a semicolon (a new CSP directive)', 'https://shop.example;sandbox'],
    ['a comma (a second CSP policy)', 'https://a,b.example'],
    ['a single quote', "https://shop.example'"],
    ['a keyword', "'self'"],
    ['a double quote', 'https://shop.example"'],
    ['a space', 'https://shop.example script-src'],
    ['a leading space', ' https://shop.example'],
    ['a tab', 'https://shop.example\t'],
    ['a line break (header injection)', 'https://shop.example\r\nX-Injected: 1'],
    ['a Unicode line separator', 'https://shop.example\u2028'],
    ['an ideographic space', 'https://shop\u3000.example'],
    ['a NUL', 'https://shop.example\u0000'],
    ['a trailing slash', 'https://shop.example/'],
    ['a path', 'https://shop.example/checkout'],
    ['a query', 'https://shop.example?x=1'],
    ['a fragment', 'https://shop.example#top'],
    ['userinfo', 'https://user:pass@shop.example'],
    ['an underscore', 'https://shop_1.example'],
    ['a trailing dot', 'https://shop.example.'],
    ['a label starting with a hyphen', 'https://-shop.example'],
    ['port 0', 'https://shop.example:0'],
    ['a port above 65535', 'https://shop.example:65536'],
    ['a port with a leading zero', 'https://shop.example:0443'],
    ['an IPv4 shorthand the URL parser rewrites', 'https://127.1'],
    ['a hexadecimal IPv4', 'https://0x7f.0.0.1'],
    ['another IPv6 literal', 'https://[::2]'],
    ['plain http to a public host', 'http://shop.example'],
    ['plain http to a host that starts with localhost', 'http://localhost.evil.example'],
    ['another scheme', 'javascript://shop.example'],
    ['a data URL', 'data:text/html,hi'],
    ['a blob URL', 'blob:https://shop.example'],
    ['no host', 'https://'],
    ['a bare wildcard', '*'],
  ])('refuses %s', (_name, input) => {
    expect(canonicalOrigin(input)).toBeUndefined();
  });

  it('never returns anything but a single origin, whatever string it is given', () => {
    // A fixed seed, so a failure names an input that fails again.
    let seed = 0x7e55e7a;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pieces = ['a', 'Z', '0', '9', '.', '-', '_', '*', ';', ',', "'", '"', ' ', '\t', '\n', '/', '?', '#', '@', ':', '[', ']', '%', '\\', '<', '>', '(', ')', '=',
      '\u0000', '\u00a0', '\u2028', '\u3002', '\uff0a', '\uff1b', '\uff0c', '\ufe63', 'ü', 'ß', '\ud800', '443', '::1', 'localhost', '127.0.0.1', 'xn--'];
    const prefixes = ['https://', 'http://', 'HTTPS://', 'https:/', ''];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let input = prefixes[random(prefixes.length)]!;
      for (let n = 1 + random(8); n > 0; n--) input += pieces[random(pieces.length)];
      const origin = canonicalOrigin(input);
      if (origin === undefined) continue;
      accepted++;
      expect(origin, JSON.stringify(input)).toMatch(SINGLE_ORIGIN);
      expect(new URL(origin).origin, JSON.stringify(input)).toBe(origin);
    }
    // The generator must also reach accepted origins, or the property above says nothing.
    expect(accepted).toBeGreaterThan(100);
  });
});
