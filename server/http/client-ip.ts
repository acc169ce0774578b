import type { Request } from 'express';
import ipaddr from 'ipaddr.js';

/**
 * The client's address, as the audit log records it and the rate limits
 * count it: `req.ip`, which is the connection's peer unless a trusted proxy
 * (`TESSERA_TRUST_PROXY`) names the client in `X-Forwarded-For`. Express
 * takes the header's entries as written, so an entry that is not an IP
 * address (a card number, 8 KiB of text) is not believed: the peer is the
 * client then, and nothing but an address is ever stored or counted.
 */
export function clientIp(req: Request): string {
  let ip = known.get(req);
  if (ip === undefined) {
    const claimed = req.ip;
    ip = claimed !== undefined && isIpAddress(claimed) ? claimed : (req.socket.remoteAddress ?? 'unknown');
    known.set(req, ip);
  }
  return ip;
}

/**
 * Each request's address, worked out once: the access log, the audit entry
 * and the rate limits each ask, and `req.ip` parses `X-Forwarded-For` and
 * checks the proxy list anew at every read.
 */
const known = new WeakMap<Request, string>();

function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text);
}

/**
 * The network an address stands for when counting abuse: an IPv4 address
 * (IPv4-mapped IPv6 included) on its own, an IPv6 address as its /64 — one
 * subscriber is usually given a whole /64, and could otherwise take a fresh
 * address for every attempt.
 */
export function clientNetwork(ip: string): string {
  if (ip === last.ip) return last.network;
  const network = networkOf(ip);
  last = { ip, network };
  return network;
}

/** The last address asked about: one request asks for its network more than once (its rate limits, its decline counters). */
let last = { ip: '', network: '' };

function networkOf(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const prefix = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
