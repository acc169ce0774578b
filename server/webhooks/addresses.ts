import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Which addresses a webhook may be sent to. The lists are data: the IANA
 * special-purpose registries (IPv4 and IPv6) entries that are not globally
 * reachable, plus multicast, and for IPv6 everything outside the global
 * unicast space 2000::/3. The first match names the refusal.
 *
 * Addresses that embed an IPv4 address — IPv4-mapped (::ffff:a.b.c.d), the
 * NAT64 well-known prefix (64:ff9b::/96) and 6to4 (2002::/16) — are judged
 * by the IPv4 address they reach. Teredo and the other tunnelling and
 * protocol prefixes are refused whole: no webhook receiver lives there.
 *
 * Why not ipaddr.js's own `range()`: it calls everything it does not list
 * `unicast`, so IPv4-compatible (::127.0.0.1), unallocated IPv6 space and
 * the 6to4 or NAT64 form of 10.0.0.1 would all pass; and its names are not a
 * policy we control. ipaddr.js is used to parse and to match prefixes.
 */
const BLOCKED_IPV4: ReadonlyArray<readonly [cidr: string, name: string]> = [
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'carrier-grade NAT'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay anycast'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
];

const BLOCKED_IPV6: ReadonlyArray<readonly [cidr: string, name: string]> = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['100::/64', 'discard-only'],
  ['100:0:0:1::/64', 'dummy prefix'],
  ['2001::/23', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['fc00::/7', 'unique local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
];

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
const IPV4_MAPPED = ipaddr.parseCIDR('::ffff:0:0/96');
const NAT64 = ipaddr.parseCIDR('64:ff9b::/96');
const SIX_TO_FOUR = ipaddr.parseCIDR('2002::/16');

const parsed = <T extends ipaddr.IPv4 | ipaddr.IPv6>(list: ReadonlyArray<readonly [string, string]>) =>
  list.map(([cidr, name]) => ({ range: ipaddr.parseCIDR(cidr) as [T, number], name }));
const IPV4_RANGES = parsed<ipaddr.IPv4>(BLOCKED_IPV4);
const IPV6_RANGES = parsed<ipaddr.IPv6>(BLOCKED_IPV6);

export type AddressVerdict =
  /** `connectTo`: the address to open a socket to (an IPv4-mapped address as plain IPv4). */
  | { allowed: true; connectTo: string; family: 4 | 6 }
  /** `range`: a fixed name such as `loopback`, for logs and tests; never shown with the address to a merchant. */
  | { allowed: false; range: string };

/**
 * Whether a webhook may be sent to `address` (an IP address as a resolver
 * or `URL.hostname` gives it, IPv6 without brackets). Anything that is not
 * a plain IP address — a zone id (`fe80::1%eth0`), a shorthand such as
 * `127.1` — is refused.
 */
export function classifyAddress(address: string): AddressVerdict {
  const family = isIP(address);
  if (family === 0 || address.includes('%')) return { allowed: false, range: 'not an address' };
  return family === 4 ? classifyIPv4(ipaddr.IPv4.parse(address)) : classifyIPv6(ipaddr.IPv6.parse(hexIPv6(address)));
}

/**
 * An IPv6 address with any dotted-quad tail written in hex, as the URL
 * parser serializes it. ipaddr.js reads `::a.b.c.d` (IPv4-compatible) as
 * `::ffff:a.b.c.d` (IPv4-mapped), another address; hex it reads right.
 */
const hexIPv6 = (address: string) => new URL(`http://[${address}]`).hostname.slice(1, -1);

function classifyIPv4(ip: ipaddr.IPv4, via?: string): AddressVerdict {
  const blocked = IPV4_RANGES.find(({ range }) => ip.match(range));
  if (blocked !== undefined) return { allowed: false, range: via === undefined ? blocked.name : `${blocked.name} (${via})` };
  return { allowed: true, connectTo: ip.toString(), family: 4 };
}

function classifyIPv6(ip: ipaddr.IPv6): AddressVerdict {
  if (ip.match(IPV4_MAPPED)) return classifyIPv4(ip.toIPv4Address(), 'IPv4-mapped');
  const embedded = embeddedIPv4(ip);
  if (embedded !== undefined) {
    const inner = classifyIPv4(embedded.ipv4, embedded.via);
    return inner.allowed ? { allowed: true, connectTo: ip.toString(), family: 6 } : inner;
  }
  const blocked = IPV6_RANGES.find(({ range }) => ip.match(range));
  if (blocked !== undefined) return { allowed: false, range: blocked.name };
  if (!ip.match(GLOBAL_UNICAST_V6)) return { allowed: false, range: 'reserved' };
  return { allowed: true, connectTo: ip.toString(), family: 6 };
}

/** The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002:AABB:CCDD::/48) address reaches. */
function embeddedIPv4(ip: ipaddr.IPv6): { ipv4: ipaddr.IPv4; via: string } | undefined {
  const parts = ip.parts;
  if (ip.match(NAT64)) return { ipv4: fromParts(parts[6]!, parts[7]!), via: 'NAT64' };
  if (ip.match(SIX_TO_FOUR)) return { ipv4: fromParts(parts[1]!, parts[2]!), via: '6to4' };
  return undefined;
}

const fromParts = (high: number, low: number) => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
