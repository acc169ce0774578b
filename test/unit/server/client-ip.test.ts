import type { Request } from 'express';
import { describe, expect, it } from 'vitest';
import { clientIp, clientNetwork } from '../../../server/http/client-ip.ts';

describe('the network a client address is counted under', () => {
  it.each([
    ['an IPv4 address stands for itself', '203.0.113.7', '203.0.113.7'],
    ['an IPv4-mapped IPv6 address is its IPv4 address', '::ffff:203.0.113.7', '203.0.113.7'],
    ['an IPv6 address stands for its /64', '2001:db8:aa:bb:1:2:3:4', '2001:db8:aa:bb::/64'],
    ['another address in the same /64 is the same network', '2001:db8:aa:bb:ffff::9', '2001:db8:aa:bb::/64'],
    ['a compressed IPv6 address is expanded first', '2001:db8::1', '2001:db8:0:0::/64'],
    ['an address that is not one is kept as given', 'unknown', 'unknown'],
  ])('%s', (_name, address, network) => {
    expect(clientNetwork(address)).toBe(network);
  });

  it('tells apart two /64s of one /48', () => {
    expect(clientNetwork('2001:db8:aa:1::1')).not.toBe(clientNetwork('2001:db8:aa:2::1'));
  });

  it('answers each address its own network when asked in turns, the same one twice in a row included', () => {
    const asked = ['2001:db8:aa:1::1', '2001:db8:aa:1::1', '203.0.113.7', '2001:db8:aa:2::1', '203.0.113.7', 'unknown', '2001:db8:aa:1::1'];
    expect(asked.map(clientNetwork)).toEqual([
      '2001:db8:aa:1::/64',
      '2001:db8:aa:1::/64',
      '203.0.113.7',
      '2001:db8:aa:2::/64',
      '203.0.113.7',
      'unknown',
      '2001:db8:aa:1::/64',
    ]);
  });
});

describe("a request's client address", () => {
  /** What `clientIp` reads of an Express request: `req.ip` (counted, to see how often it is worked out) and the peer. */
  const request = (ip: string | undefined, peer: string) => {
    const reads = { count: 0 };
    const req = {
      get ip() {
        reads.count += 1;
        return ip;
      },
      socket: { remoteAddress: peer },
    };
    return { req: req as unknown as Request, reads };
  };

  it('is req.ip when that is an address, else the peer, and each request keeps its own', () => {
    const proxied = request('203.0.113.7', '10.0.0.1');
    const forged = request('4242 4242 4242 4242', '10.0.0.2');
    const direct = request(undefined, '198.51.100.3');
    for (let round = 0; round < 3; round++) {
      expect(clientIp(proxied.req)).toBe('203.0.113.7');
      expect(clientIp(forged.req)).toBe('10.0.0.2');
      expect(clientIp(direct.req)).toBe('198.51.100.3');
    }
  });

  it('works req.ip out once a request, however often it is asked', () => {
    const { req, reads } = request('203.0.113.7', '10.0.0.1');
    for (let i = 0; i < 5; i++) clientIp(req);
    expect(reads.count).toBe(1);
  });
});
