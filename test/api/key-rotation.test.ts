import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard, fetchJwks } from '../support/cards.ts';
import { startVaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

/** `npm run tessera -- keys rotate`, as an operator runs it. */
async function rotateWithCli(vault: TestVault, graceSeconds?: number): Promise<{ kid: string; retired: string[] }> {
  const args = ['run', '--silent', 'tessera', '--', 'keys', 'rotate', '--url', vault.url];
  if (graceSeconds !== undefined) args.push('--grace', String(graceSeconds));
  const { stdout } = await run('npm', args, { cwd: ROOT, env: { ...process.env, TESSERA_ADMIN_KEY: vault.adminKey }, timeout: 30_000 });
  return JSON.parse(stdout) as { kid: string; retired: string[] };
}

describe.each(storageKinds())('transport key rotation on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'key-rotation' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const tokenize = (card: string) => api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card } });

  it('reads back tokens made before a rotation, and accepts JWEs made with the old key during the grace period', async () => {
    const [oldKey] = await fetchJwks(vault.url);
    const before = await tokenize(await encryptCard(vault.url, cardPlaintext()));
    expect(before.status).toBe(201);
    const encryptedBeforeRotation = await encryptCard(vault.url, cardPlaintext(), { key: oldKey });

    const rotated = await rotateWithCli(vault);
    expect(rotated.retired).toEqual([oldKey!.kid]);
    const jwks = await fetchJwks(vault.url);
    expect(jwks.map((k) => k.kid)).toEqual([rotated.kid]);

    expect((await api(vault.url, 'GET', `/v1/tokens/${before.body.token}`, { key: shop.secretKey })).status).toBe(200);
    expect((await tokenize(encryptedBeforeRotation)).status).toBe(201);
    expect((await tokenize(await encryptCard(vault.url, cardPlaintext(), { key: oldKey }))).status).toBe(201);
    expect((await tokenize(await encryptCard(vault.url, cardPlaintext()))).status).toBe(201);
  });

  it('stops accepting the retired key once its grace period is over, and destroys its private half', async () => {
    const [oldKey] = await fetchJwks(vault.url);
    await rotateWithCli(vault, 1);
    // It decrypts for one more second: offer it a fresh JWE until it is refused.
    const late = await vi.waitFor(
      async () => {
        const response = await tokenize(await encryptCard(vault.url, cardPlaintext(), { key: oldKey }));
        expect(response.status, 'the retired key still decrypts').not.toBe(201);
        return response;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(late.status).toBe(400);
    expect(late.body.error.code).toBe('unknown_kid');

    await vault.vault.deps.keyring.destroyExpired();
    const { rows } = await vault.vault.db.query<{ private_key_sealed: Uint8Array | null }>(
      'select private_key_sealed from transport_keys where kid = $1',
      [oldKey!.kid],
    );
    expect(rows).toEqual([{ private_key_sealed: null }]);
  });

  it('refuses key rotation without the admin key', async () => {
    const response = await api(vault.url, 'POST', '/v1/keys/rotate', { key: shop.secretKey, json: {} });
    expect(response.status).toBe(401);
  });
});

describe.skipIf(!storageKinds().includes('postgres'))('transport key rotation across vault processes on PostgreSQL', () => {
  it('accepts a JWE for a key rotated in through another worker process at once', async () => {
    const dataDir = await newDataDir('postgres', 'rotation-workers');
    const running = await startVaultProcess({ dataDir, env: { DATABASE_URL: await newTestDatabase(), TESSERA_WORKERS: '2' } });
    try {
      const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
      const shop = await createMerchant({ url: running.url, adminKey });
      const rotated = await api(running.url, 'POST', '/v1/keys/rotate', { key: adminKey, json: {} });
      expect(rotated.status).toBe(201);
      // New connections are spread over both workers; the one that did not rotate must publish and accept the key at once.
      const published: string[] = [];
      for (let i = 0; i < 4; i++) {
        const response = await fetch(`${running.url}/v1/keys`, { headers: { connection: 'close' } });
        published.push(...((await response.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid));
      }
      expect(published).toEqual(Array(4).fill(rotated.body.kid));
      const newKey = { kty: 'EC', crv: 'P-256', ...(await fetchJwks(running.url)).find((k) => k.kid === rotated.body.kid) };
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const response = await fetch(`${running.url}/v1/tokens`, {
          method: 'POST',
          headers: { authorization: `Bearer ${shop.secretKey}`, 'content-type': 'application/json', connection: 'close' },
          body: JSON.stringify({ card: await encryptCard(running.url, cardPlaintext(), { key: { ...newKey, kid: rotated.body.kid } }) }),
        });
        statuses.push(response.status);
      }
      expect(statuses).toEqual(Array(8).fill(201));
    } finally {
      await running.kill('SIGTERM');
    }
  });
});
