import { domainToASCII } from 'node:url';

/**
 * An `allowed_origins` entry ends up verbatim in the fields document's
 * `Content-Security-Policy: … frame-ancestors <origin>`, so it must be one
 * origin and nothing else: no `*` (a wildcard frame-ancestor), no `;` or `,`
 * (a new directive or policy), no quotes, spaces, paths or userinfo.
 *
 * Accepted: `http(s)://host[:port]`, the host made of letters, digits, dots
 * and hyphens. A Unicode host is converted to its punycode form (what a
 * browser sends as `Origin`), letter case is lowered and a default port
 * dropped; anything else the URL parser would rewrite (`127.1`, `0x7f.0.0.1`,
 * a port with a leading zero) is refused rather than guessed at. `http:` is
 * for loopback development only.
 */
const ORIGIN_SHAPE = /^(https?):\/\/([A-Za-z0-9.\-\u0080-\uffff]+|\[::1\])(?::([1-9]\d{0,4}))?$/i;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443' };

/** The origin as browsers serialize it, or `undefined` when `value` is not an origin the vault accepts. */
export function canonicalOrigin(value: string): string | undefined {
  const match = ORIGIN_SHAPE.exec(value);
  if (match === null) return undefined;
  const scheme = match[1]!.toLowerCase();
  const rawHost = match[2]!;
  const port = match[3];
  // Whitespace and controls above ASCII (U+0085, U+2028, U+3000, …) are no part of a host name.
  if (/[\s\p{C}]/u.test(rawHost)) return undefined;
  const host = rawHost === '[::1]' ? rawHost : domainToASCII(rawHost);
  if (host !== '[::1]' && !HOSTNAME.test(host)) return undefined;
  // An ASCII host is taken as written (but for case): the parser's own rewrites, such as IPv4 shorthands, are refused.
  if (/^[\x00-\x7f]*$/.test(rawHost) && rawHost.toLowerCase() !== host) return undefined;
  if (scheme === 'http' && !LOOPBACK_HOSTS.has(host)) return undefined;
  if (port !== undefined && Number(port) > 65535) return undefined;
  const origin = `${scheme}://${host}${port === undefined || port === DEFAULT_PORTS[scheme] ? '' : `:${port}`}`;
  try {
    return new URL(origin).origin === origin ? origin : undefined;
  } catch {
    return undefined;
  }
}
