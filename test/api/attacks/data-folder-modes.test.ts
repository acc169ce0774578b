import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api } from '../../support/api.ts';
import { START_HEAVY_MS, startVaultProcess } from '../../support/vault-process.ts';
import { artifactsDir, newDataDir } from '../../support/vault.ts';

/**
 * Review finding: the data folder (0700) and its key files (0600) got their
 * modes only when they were created. After someone (a backup restore, a
 * careless `chmod -R`) opened them to 0755/0644, the master key, the admin
 * key, the demo merchant's secret key and the database files stayed
 * readable by every local user, start after start.
 */
const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Every folder and file under `dir` (itself included), with its mode. */
function modesUnder(dir: string): Array<[path: string, mode: number, isDirectory: boolean]> {
  const entries: Array<[string, number, boolean]> = [[dir, modeOf(dir), true]];
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    const stats = statSync(path);
    entries.push([path, stats.mode & 0o777, stats.isDirectory()]);
  }
  return entries;
}

describe('the data folder', () => {
  it('is owner-only again on the next start after someone opened it to 0755/0644, and the vault still reads it', async () => {
    const dataDir = await newDataDir('pglite', 'attack-modes');
    const first = await startVaultProcess({ dataDir });
    await first.kill('SIGTERM');

    const keyFiles = ['master.key', 'admin.key', 'demo-merchant.json'].map((name) => join(dataDir, name));
    const pgdata = join(dataDir, 'pgdata');
    // As `chmod -R go+rX` would leave it.
    for (const [path, , isDirectory] of [[dataDir, 0, true] as const, ...modesUnder(pgdata)]) chmodSync(path, isDirectory ? 0o755 : 0o644);
    for (const path of keyFiles) chmodSync(path, 0o644);
    expect(modeOf(dataDir)).toBe(0o755);

    const second = await startVaultProcess({ dataDir });
    try {
      expect(modeOf(dataDir)).toBe(0o700);
      for (const path of keyFiles) expect([path, modeOf(path)]).toEqual([path, 0o600]);
      const open = modesUnder(pgdata).filter(([, mode, isDirectory]) => mode !== (isDirectory ? 0o700 : 0o600));
      expect(open, 'database folders and files left readable by others').toEqual([]);
      expect(modesUnder(pgdata).length).toBeGreaterThan(10);
      // PGlite still opens its own files: the demo merchant made by the first start is there.
      const demo = JSON.parse(readFileSync(join(dataDir, 'demo-merchant.json'), 'utf8'));
      const merchant = await api(second.url, 'GET', '/v1/merchant', { key: demo.secret_key });
      expect(merchant.status).toBe(200);
      expect(merchant.body.id).toBe(demo.merchant_id);
    } finally {
      await second.kill('SIGTERM');
    }
    const log = readFileSync(join(dataDir, 'vault.log'), 'utf8');
    expect(log).toContain('its modes are owner-only again');
  }, START_HEAVY_MS);

  it('is owner-only from the first start: the database files PGlite creates included', async () => {
    const dataDir = join(artifactsDir(), `attack-modes-fresh-${randomBytes(4).toString('hex')}`);
    // Made with the usual 0755 (and no database yet): the vault must tighten the folder and what PGlite creates.
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const vault = await startVaultProcess({ dataDir });
    try {
      const open = modesUnder(dataDir)
        .filter(([path]) => !path.endsWith('vault.log'))
        .filter(([, mode, isDirectory]) => mode !== (isDirectory ? 0o700 : 0o600));
      expect(open, 'folders and files readable by others').toEqual([]);
      expect(modesUnder(join(dataDir, 'pgdata')).length).toBeGreaterThan(10);
    } finally {
      await vault.kill('SIGTERM');
    }
  }, START_HEAVY_MS);
});
