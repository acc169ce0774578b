import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { classifyAddress } from '../../../server/webhooks/addresses.ts';

describe('webhook address policy', () => {
  it.each([
    ['8.8.8.8', '8.8.8.8', 4],
    ['1.1.1.1', '1.1.1.1', 4],
    ['93.184.215.14', '93.184.215.14', 4],
    ['9.255.255.255', '9.255.255.255', 4],
    ['11.0.0.0', '11.0.0.0', 4],
    ['100.63.255.255', '100.63.255.255', 4],
    ['100.128.0.0', '100.128.0.0', 4],
    ['126.255.255.255', '126.255.255.255', 4],
    ['128.0.0.0', '128.0.0.0', 4],
    ['169.253.255.255', '169.253.255.255', 4],
    ['172.15.255.255', '172.15.255.255', 4],
    ['172.32.0.0', '172.32.0.0', 4],
    ['192.0.1.0', '192.0.1.0', 4],
    ['192.167.255.255', '192.167.255.255', 4],
    ['192.169.0.0', '192.169.0.0', 4],
    ['198.17.255.255', '198.17.255.255', 4],
    ['198.20.0.0', '198.20.0.0', 4],
    ['223.255.255.255', '223.255.255.255', 4],
    ['::ffff:8.8.8.8', '8.8.8.8', 4],
    ['::ffff:808:808', '8.8.8.8', 4],
    ['2606:4700:4700::1111', '2606:4700:4700::1111', 6],
    ['2a00:1450:4001:80e::200e', '2a00:1450:4001:80e::200e', 6],
    ['2001:200::1', '2001:200::1', 6],
    ['3ffe::1', '3ffe::1', 6],
    ['64:ff9b::808:808', '64:ff9b::808:808', 6],
    ['2002:808:808::1', '2002:808:808::1', 6],
  ])('allows %s, connecting to %s', (address, connectTo, family) => {
    expect(classifyAddress(address)).toEqual({ allowed: true, connectTo, family });
  });

  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.0', 'carrier-grade NAT'],
    ['100.127.255.255', 'carrier-grade NAT'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.8', 'IETF protocol assignments'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', '6to4 relay anycast'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.7', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.254', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback (IPv4-mapped)'],
    ['::ffff:7f00:1', 'loopback (IPv4-mapped)'],
    ['::ffff:10.0.0.1', 'private (IPv4-mapped)'],
    ['::ffff:169.254.169.254', 'link-local (IPv4-mapped)'],
    ['::ffff:0.0.0.0', 'unspecified (IPv4-mapped)'],
    ['::127.0.0.1', 'reserved'],
    ['::7f00:1', 'reserved'],
    ['::8.8.8.8', 'reserved'],
    ['::ffff:0:7f00:1', 'reserved'],
    ['64:ff9b::7f00:1', 'loopback (NAT64)'],
    ['64:ff9b::10.0.0.1', 'private (NAT64)'],
    ['64:ff9b::a9fe:a9fe', 'link-local (NAT64)'],
    ['64:ff9b:1::1', 'local-use NAT64'],
    ['2002:7f00:1::1', 'loopback (6to4)'],
    ['2002:a9fe:a9fe::1', 'link-local (6to4)'],
    ['2002:c0a8:101::1', 'private (6to4)'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
    ['2001:2::1', 'IETF protocol assignments (Teredo, benchmarking, ORCHID)'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['100::1', 'discard-only'],
    ['fc00::1', 'unique local'],
    ['fd12:3456:789a::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['ff0e::1', 'multicast'],
    ['4000::1', 'reserved'],
    ['5f00::1', 'reserved'],
    ['e000::1', 'reserved'],
  ])('refuses %s (%s)', (address, range) => {
    expect(classifyAddress(address)).toEqual({ allowed: false, range });
  });

  it.each([
    ['a zone id', 'fe80::1%eth0'],
    ['an IPv4 shorthand', '127.1'],
    ['a hexadecimal IPv4', '0x7f000001'],
    ['a decimal IPv4', '2130706433'],
    ['a name', 'localhost'],
    ['a bracketed IPv6', '[::1]'],
    ['an empty string', ''],
  ])('refuses %s, which is not a plain address', (_what, address) => {
    expect(classifyAddress(address)).toEqual({ allowed: false, range: 'not an address' });
  });

  it('agrees with ipaddr.js on which IPv4 addresses are special, but for AS112 and AMT (public anycast), across 50,000 addresses', () => {
    let seed = 0x9e3779b9;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    const boundaries = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
      '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4']
      .flatMap((cidr) => {
        const [first, bits] = ipaddr.IPv4.parseCIDR(cidr);
        const start = first.toByteArray().reduce((n, byte) => n * 256 + byte, 0);
        const size = 2 ** (32 - bits);
        return [start - 1, start, start + size - 1, start + size].filter((n) => n >= 0 && n < 2 ** 32);
      });
    const addresses = [...boundaries, ...Array.from({ length: 50_000 }, next)].map((n) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
    const disagreements = addresses.filter((address) => {
      const special = !['unicast', 'as112', 'amt'].includes(ipaddr.IPv4.parse(address).range());
      return classifyAddress(address).allowed === special;
    });
    expect(disagreements).toEqual([]);
  });
});
