import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api } from '../../support/api.ts';
import { runVaultToExit, START_HEAVY_MS, startVaultProcess } from '../../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../../support/vault.ts';

/**
 * Review finding: nothing told a production start from a development one. A
 * vault deployed without `TESSERA_MASTER_KEY` generated a master key into a
 * plain file next to the data it protects (and the admin key likewise), and
 * every fresh store got the demo merchant, whose secret key is written to
 * `demo-merchant.json` in plain text and which allows plain-http localhost.
 * With `NODE_ENV=production` the vault now refuses all of that.
 */
const MASTER_KEY = randomBytes(32).toString('base64');
const ADMIN_KEY = `admin_${randomBytes(24).toString('hex')}`;
const PRODUCTION = { NODE_ENV: 'production', TESSERA_MASTER_KEY: MASTER_KEY, TESSERA_ADMIN_KEY: ADMIN_KEY };

describe('a production start (NODE_ENV=production)', () => {
  it.each([
    ['TESSERA_MASTER_KEY', 'master.key'],
    ['TESSERA_ADMIN_KEY', 'admin.key'],
  ])('refuses to start without %s, naming it, and writes no %s', async (variable, file) => {
    const dataDir = await newDataDir('pglite', 'attack-production-keys');
    const env: Record<string, string> = { ...PRODUCTION };
    delete env[variable];
    const { code, output } = await runVaultToExit({ dataDir, env });
    expect(code).toBe(1);
    expect(output).toContain(variable);
    expect(output).toContain('NODE_ENV=production');
    expect(existsSync(join(dataDir, file))).toBe(false);
  }, START_HEAVY_MS);

  it('serves on a fresh store without making the demo merchant or any key file', async () => {
    const dataDir = await newDataDir('pglite', 'attack-production-fresh');
    const vault = await startVaultProcess({ dataDir, env: PRODUCTION });
    try {
      const merchants = await api(vault.url, 'GET', '/v1/merchants', { key: ADMIN_KEY });
      expect(merchants.status).toBe(200);
      expect(merchants.body.data).toEqual([]);
      expect(readdirSync(dataDir).filter((name) => /\.(key|json)$/.test(name))).toEqual([]);
    } finally {
      await vault.kill('SIGTERM');
    }
  }, START_HEAVY_MS);

  it.each(storageKinds())('refuses a data folder and store a development start used, on %s: first for demo-merchant.json, then for the demo merchant itself', async (storage) => {
    const dataDir = await newDataDir(storage, 'attack-production-demo');
    const database: Record<string, string> = storage === 'postgres' ? { DATABASE_URL: await newTestDatabase(), TESSERA_WORKERS: '1' } : {};
    // A development start with the same keys, as someone trying production on their development data would have.
    const development = await startVaultProcess({ dataDir, env: { TESSERA_MASTER_KEY: MASTER_KEY, TESSERA_ADMIN_KEY: ADMIN_KEY, ...database } });
    await development.kill('SIGTERM');
    expect(existsSync(join(dataDir, 'demo-merchant.json'))).toBe(true);

    const withFile = await runVaultToExit({ dataDir, env: { ...PRODUCTION, ...database } });
    expect(withFile.code).toBe(1);
    expect(withFile.output).toContain('demo-merchant.json');

    rmSync(join(dataDir, 'demo-merchant.json'));
    const withMerchant = await runVaultToExit({ dataDir, env: { ...PRODUCTION, ...database } });
    expect(withMerchant.code).toBe(1);
    expect(withMerchant.output).toMatch(/store holds the demo merchant \(mer_/);
  }, START_HEAVY_MS);
});
