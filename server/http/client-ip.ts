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
  const ip = req.ip;
  if (ip !== undefined && isIpAddress(ip)) return ip;
  return req.socket.remoteAddress ?? 'unknown';
}

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
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const prefix = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
