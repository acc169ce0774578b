import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { api, createMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard } from '../support/cards.ts';
import { START_HEAVY_MS, startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

describe.each(storageKinds())('durability on %s', (storage) => {
  let running: VaultProcess | undefined;
  afterEach(() => running?.kill('SIGTERM'));

  it('keeps a token whose 201 was sent when the vault is killed with SIGKILL right after', async () => {
    const dataDir = await newDataDir(storage, 'durability');
    // One process on PostgreSQL too: the SIGKILL must hit the process that sent the 201 (and a worker per core would open the vault three times).
    const env: Record<string, string> = storage === 'postgres' ? { DATABASE_URL: await newTestDatabase(), TESSERA_WORKERS: '1' } : {};

    running = await startVaultProcess({ dataDir, env });
    const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    const shop = await createMerchant({ url: running.url, adminKey });
    const created = await api(running.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json: { card: await encryptCard(running.url, cardPlaintext()) },
    });
    expect(created.status).toBe(201);
    await running.kill('SIGKILL');
    expect(running.child.signalCode).toBe('SIGKILL');

    running = await startVaultProcess({ dataDir, env });
    const read = await api(running.url, 'GET', `/v1/tokens/${created.body.token}`, { key: shop.secretKey });
    expect(read.status).toBe(200);
    expect(read.body.card).toEqual(created.body.card);
  }, START_HEAVY_MS);
});
