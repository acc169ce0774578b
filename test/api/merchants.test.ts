import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

/** `npm run tessera -- …`, as an operator runs it. */
async function tessera(vault: TestVault, ...args: string[]): Promise<unknown> {
  const { stdout } = await run('npm', ['run', '--silent', 'tessera', '--', ...args, '--url', vault.url], {
    cwd: ROOT,
    env: { ...process.env, TESSERA_ADMIN_KEY: vault.adminKey },
    timeout: 30_000,
  });
  return JSON.parse(stdout);
}

const MERCHANT_FIELDS = ['allowed_origins', 'created_at', 'id', 'name', 'network_tokens', 'publishable_key', 'unique_tokens', 'webhook_url'];

describe.each(storageKinds())('merchants, settings and admin requests on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'merchants' });
    shop = await createMerchant(vault, { name: 'Settings Shop' });
  });
  afterAll(() => vault?.close());

  const admin = (method: string, path: string, json?: unknown, headers: Record<string, string> = {}) =>
    api(vault.url, method, path, { key: vault.adminKey, headers, ...(json === undefined ? {} : { json }) });
  const count = async (table: string) => (await vault.vault.db.query<{ n: number }>(`select count(*)::int as n from ${table}`)).rows[0]!.n;

  describe('GET /v1/merchants', () => {
    it('lists merchants for the admin key, newest first, paginated, without any key material', async () => {
      const made = [];
      for (const name of ['List A', 'List B', 'List C']) made.push(await createMerchant(vault, { name }));
      const first = await admin('GET', '/v1/merchants?limit=2');
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ object: 'list', has_more: true });
      expect(first.body.data.map((m: { id: string }) => m.id)).toEqual([made[2]!.id, made[1]!.id]);
      for (const merchant of first.body.data) expect(Object.keys(merchant).sort()).toEqual(MERCHANT_FIELDS);
      expect(first.text).not.toMatch(/sk_test_|secret|sealed|hash/);

      const second = await admin('GET', `/v1/merchants?limit=2&starting_after=${made[1]!.id}`);
      expect(second.body.data.map((m: { id: string }) => m.id)).toEqual([made[0]!.id, shop.id]);
      const everyone = await admin('GET', '/v1/merchants?limit=100');
      expect(everyone.body.has_more).toBe(false);
      expect(everyone.body.data.map((m: { id: string }) => m.id)).toEqual(expect.arrayContaining([shop.id, ...made.map((m) => m.id)]));
    });

    it("refuses a merchant's keys (401) and a bad cursor or limit (400)", async () => {
      expect((await api(vault.url, 'GET', '/v1/merchants', { key: shop.secretKey })).status).toBe(401);
      expect((await api(vault.url, 'GET', '/v1/merchants', { key: shop.publishableKey })).status).toBe(401);
      expect((await admin('GET', '/v1/merchants?starting_after=mer_doesnotexist')).body.error).toMatchObject({ code: 'parameter_invalid', param: 'starting_after' });
      expect((await admin('GET', '/v1/merchants?limit=101')).body.error.code).toBe('parameter_invalid');
    });

    it('is what `tessera merchants list` prints', async () => {
      const printed = (await tessera(vault, 'merchants', 'list', '--limit', '3')) as { data: { id: string }[] };
      expect(printed).toEqual((await admin('GET', '/v1/merchants?limit=3')).body);
      const next = (await tessera(vault, 'merchants', 'list', '--limit', '3', '--starting-after', printed.data[2]!.id)) as { data: unknown[] };
      expect(next).toEqual((await admin('GET', `/v1/merchants?limit=3&starting_after=${printed.data[2]!.id}`)).body);
    }, 60_000);
  });

  describe('Idempotency-Key on admin, settings and session requests', () => {
    it('creates one merchant for a retried POST /v1/merchants, answers it with the same keys, and never stores the secret key in the clear', async () => {
      const before = await count('merchants');
      const body = { name: 'Idempotent Shop', allowed_origins: ['https://idem.example'] };
      const first = await admin('POST', '/v1/merchants', body, { 'Idempotency-Key': 'create-idem-shop' });
      const second = await admin('POST', '/v1/merchants', body, { 'Idempotency-Key': 'create-idem-shop' });
      expect(first.status).toBe(201);
      expect(second.text).toBe(first.text);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(await count('merchants')).toBe(before + 1);
      // The replayed secret key works.
      expect((await api(vault.url, 'GET', '/v1/merchant', { key: second.body.secret_key })).body.id).toBe(first.body.id);
      const { rows } = await vault.vault.db.query<{ response_body: string }>(`select response_body from idempotency_keys where key = 'create-idem-shop'`);
      expect(rows[0]!.response_body).not.toContain(first.body.secret_key);
      expect(rows[0]!.response_body).not.toContain('sk_test_');

      const other = await admin('POST', '/v1/merchants', { ...body, name: 'Another Shop' }, { 'Idempotency-Key': 'create-idem-shop' });
      expect(other.status).toBe(422);
      expect(other.body.error.code).toBe('idempotency_mismatch');
      // The admin scope spans both admin endpoints: the key is bound to merchant creation.
      const rotate = await admin('POST', '/v1/keys/rotate', {}, { 'Idempotency-Key': 'create-idem-shop' });
      expect(rotate.status).toBe(422);
      expect(await count('merchants')).toBe(before + 1);
    });

    it('rotates the transport key once for a retried POST /v1/keys/rotate', async () => {
      const before = await count('transport_keys');
      const first = await admin('POST', '/v1/keys/rotate', { grace_seconds: 3600 }, { 'Idempotency-Key': 'rotate-once' });
      const second = await admin('POST', '/v1/keys/rotate', { grace_seconds: 3600 }, { 'Idempotency-Key': 'rotate-once' });
      expect(first.status).toBe(201);
      expect(second.text).toBe(first.text);
      expect(await count('transport_keys')).toBe(before + 1);
      const jwks = await api(vault.url, 'GET', '/v1/keys');
      expect(jwks.body.keys.map((k: { kid: string }) => k.kid)).toEqual([first.body.kid]);
    });

    it('updates the merchant once for a retried PATCH /v1/merchant, and refuses the key with another body', async () => {
      const events = async () =>
        (await vault.vault.db.query<{ n: number }>(`select count(*)::int as n from audit_events where merchant_id = $1 and action = 'merchant.updated'`, [shop.id]))
          .rows[0]!.n;
      const before = await events();
      const patch = (json: unknown) => api(vault.url, 'PATCH', '/v1/merchant', { key: shop.secretKey, json, headers: { 'Idempotency-Key': 'settings-1' } });
      const first = await patch({ allowed_origins: ['https://shop.example', 'https://m.shop.example'] });
      const second = await patch({ allowed_origins: ['https://shop.example', 'https://m.shop.example'] });
      expect(first.status).toBe(200);
      expect(first.body.allowed_origins).toEqual(['https://shop.example', 'https://m.shop.example']);
      expect(second.text).toBe(first.text);
      expect(await events()).toBe(before + 1);
      expect((await patch({ unique_tokens: true })).status).toBe(422);
      expect((await api(vault.url, 'GET', '/v1/merchant', { key: shop.secretKey })).body.unique_tokens).toBe(false);
    });

    it('opens one session for a retried POST /v1/sessions, scoped to the publishable key', async () => {
      const open = (merchant: TestMerchant) =>
        api(vault.url, 'POST', '/v1/sessions', {
          json: { key: merchant.publishableKey, parent_origin: merchant.allowedOrigins[0] },
          headers: { 'Idempotency-Key': 'fields-load-1' },
        });
      const first = await open(shop);
      const second = await open(shop);
      expect(first.status).toBe(201);
      expect(second.text).toBe(first.text);
      const other = await createMerchant(vault, { name: 'Session Shop' });
      const theirs = await open(other);
      expect(theirs.status).toBe(201);
      expect(theirs.body.session).not.toBe(first.body.session);
    });
  });

  describe('the merchant cache', () => {
    const origin = 'https://cache.example';
    const fields = (key: string) => api(vault.url, 'GET', `/v1/fields?key=${key}&origin=${encodeURIComponent(origin)}`);
    /** Changes the merchant's allowed origins in SQL; `announced` false stands for a notification that never came. */
    const setOrigins = (id: string, origins: string[], announced: boolean) =>
      vault.vault.db.transaction(async (tx) => {
        if (!announced) await tx.query('set local session_replication_role = replica');
        await tx.query('update merchants set allowed_origins = $2 where id = $1', [id, origins]);
      });

    it(`drops a merchant the moment a change is announced, and keeps it ${storage === 'pglite' ? 'past' : 'no longer than'} a second otherwise`, async () => {
      const cached = await createMerchant(vault, { name: 'Cache Shop', allowedOrigins: [origin] });
      expect((await fields(cached.publishableKey)).status).toBe(200);

      await setOrigins(cached.id, [], false);
      await sleep(1300);
      // PGlite is this process's own database: every change is announced, so the cache need not lapse after a second.
      // A PostgreSQL node's listening connection can drop unnoticed, so there a cached merchant lives a second at most.
      expect((await fields(cached.publishableKey)).status).toBe(storage === 'pglite' ? 200 : 403);

      await setOrigins(cached.id, [origin], true);
      await vi.waitFor(async () => expect((await fields(cached.publishableKey)).status).toBe(200), { timeout: 900, interval: 50 });
      await setOrigins(cached.id, [], true);
      await vi.waitFor(async () => expect((await fields(cached.publishableKey)).status).toBe(403), { timeout: 900, interval: 50 });
    });
  });
});
