/**
 * `TESSERA_TRUST_PROXY` (api.md, "Several vault nodes"): whom the vault
 * believes about the client's address. The address is what the audit log
 * records and what the per-IP limits count, so believing a forged
 * `X-Forwarded-For` would let a card tester pass for many clients, and
 * ignoring a real proxy's would make every shopper one client.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiFrom, createMerchant, type TestMerchant } from '../support/api.ts';
import { startBalancer, type Balancer } from '../support/balancer.ts';
import { windowWithSecondsLeft } from '../support/clock-window.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

/** The client address the vault recorded for a read of the merchant sent with these headers. */
async function recordedAddress(vault: TestVault, shop: TestMerchant, headers: Record<string, string>): Promise<string> {
  expect(await getStatus(`${vault.url}/v1/merchant`, { authorization: `Bearer ${shop.secretKey}`, ...headers })).toBe(200);
  const { rows } = await vault.vault.db.query<{ client_ip: string }>(
    `select client_ip from audit_events where merchant_id = $1 and action = 'merchant.read' order by seq desc limit 1`,
    [shop.id],
  );
  return rows[0]!.client_ip;
}

/** A GET with raw headers (fetch may not send X-Forwarded-For as given). */
function getStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One vault per setting, started together, each with a low per-IP limit (the balancer test counts on it). */
const SETTINGS = {
  unset: undefined,
  loopback: 'loopback',
  'one hop': '1',
  'a subnet the peer is not in': '10.0.0.0/8',
} as const;
type Setting = keyof typeof SETTINGS;
const LIMIT = 3;

describe('the client address the vault believes', () => {
  const vaults = new Map<Setting, { vault: TestVault; shop: TestMerchant }>();
  let balancer: Balancer;

  beforeAll(async () => {
    await Promise.all(
      Object.entries(SETTINGS).map(async ([name, trustProxy]) => {
        const env: Record<string, string> = { TESSERA_RATE_LIMIT_PER_IP: String(LIMIT) };
        if (trustProxy !== undefined) env['TESSERA_TRUST_PROXY'] = trustProxy;
        const vault = await startTestVault({ name: 'trust-proxy', env });
        vaults.set(name as Setting, { vault, shop: await createMerchant(vault) });
      }),
    );
    balancer = await startBalancer([vaults.get('loopback')!.vault.url]);
  });
  afterAll(async () => {
    await balancer?.close();
    await Promise.all([...vaults.values()].map(({ vault }) => vault.close()));
  });

  const addressSeenBy = (setting: Setting, headers: Record<string, string>) => recordedAddress(vaults.get(setting)!.vault, vaults.get(setting)!.shop, headers);

  it.each(Object.keys(SETTINGS) as Setting[])('is the connection’s peer when the request has no X-Forwarded-For, with TESSERA_TRUST_PROXY %s', async (setting) => {
    expect(await addressSeenBy(setting, {})).toBe('127.0.0.1');
  });

  it.each([
    ['unset', '127.0.0.1'],
    ['loopback', '203.0.113.9'],
    ['one hop', '203.0.113.9'],
    ['a subnet the peer is not in', '127.0.0.1'],
  ] as const)('for X-Forwarded-For: 203.0.113.9 with TESSERA_TRUST_PROXY %s, is %s', async (setting, expected) => {
    expect(await addressSeenBy(setting, { 'x-forwarded-for': '203.0.113.9' })).toBe(expected);
  });

  it.each([
    ['unset', '127.0.0.1'],
    ['loopback', '203.0.113.9'],
    ['one hop', '203.0.113.9'],
    ['a subnet the peer is not in', '127.0.0.1'],
  ] as const)(
    'for X-Forwarded-For: 198.51.100.1, 203.0.113.9 (a client put its own address before the proxy’s entry) with TESSERA_TRUST_PROXY %s, is %s',
    async (setting, expected) => {
      expect(await addressSeenBy(setting, { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' })).toBe(expected);
    },
  );

  it.each(['4242424242424242', 'not an address', '203.0.113.9, 4242 4242 4242 4242'])(
    'does not believe an X-Forwarded-For entry that is not an IP address (%s): the peer is the client',
    async (forwardedFor) => {
      expect(await addressSeenBy('loopback', { 'x-forwarded-for': forwardedFor })).toBe('127.0.0.1');
      const { rows } = await vaults.get('loopback')!.vault.vault.db.query(`select 1 from audit_events where client_ip like '%4242%' or client_ip like '%address%'`);
      expect(rows).toEqual([]);
    },
  );

  it('behind a load balancer that vouches for its clients, counts each client it names against the per-IP limit, not the balancer as one client', async () => {
    const { shop } = vaults.get('loopback')!;
    const session = (from: string) =>
      apiFrom(from, balancer.url, 'POST', '/v1/sessions', { json: { key: shop.publishableKey, parent_origin: shop.allowedOrigins[0] } });
    await windowWithSecondsLeft(5);
    const first = [];
    for (let i = 0; i < LIMIT; i++) first.push((await session('127.0.0.2')).status);
    expect(first).toEqual(Array(LIMIT).fill(201));
    expect((await session('127.0.0.2')).status).toBe(429);
    // Another client behind the same balancer still has its whole allowance.
    expect((await session('127.0.0.3')).status).toBe(201);
  });
});
