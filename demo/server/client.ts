import type { Request } from 'express';
import ipaddr from 'ipaddr.js';

/**
 * The client a request came from, as the shop's limits count it: the socket's
 * IP address (the shop listens on loopback and trusts no proxy header), an
 * IPv4-mapped IPv6 address as plain IPv4, and an IPv6 address as its /64,
 * the network one subscriber gets and may rotate addresses within.
 */
export function clientOf(req: Request): string {
  const address = req.socket.remoteAddress;
  if (address === undefined || !ipaddr.isValid(address)) return 'unknown';
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${ip.toNormalizedString()}/64`).toRFC5952String()}/64`;
}
