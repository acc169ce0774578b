import { describe, expect, it } from 'vitest';
import { clientNetwork } from '../../../server/http/client-ip.ts';

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
});
