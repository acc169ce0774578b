import type { Request } from 'express';
import ipaddr from 'ipaddr.js';

/**
 * The client's address, as the audit log records it and the rate limits
 * count it: the connection's peer (`req.ip` without a trusted proxy). The
 * one place to change when the vault learns to believe `X-Forwarded-For`.
 */
export function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
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
