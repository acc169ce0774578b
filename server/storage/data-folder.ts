import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { restrictToOwner, type ModeChange } from '../lib/file-modes.ts';

/** The vault's own files in its data folder; anything else there (the demo shop's `demo/`, say) belongs to someone else. */
const VAULT_FILES = ['master.key', 'admin.key', 'demo-merchant.json', 'vault.lock'];
const PGDATA = 'pgdata';

/**
 * Creates the data folder if needed and, on every start, puts the modes of
 * the folder (0700), the vault's key and lock files (0600) and the embedded
 * database (folders 0700, files 0600) back to owner-only, whatever someone
 * did to them meanwhile: they hold the master key, the admin key, a demo
 * secret key and every sealed card.
 */
export function secureDataFolder(dataDir: string, log: Logger): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const changes: ModeChange[] = [
    ...restrictToOwner(dataDir),
    ...VAULT_FILES.flatMap((name) => restrictToOwner(join(dataDir, name))),
    ...restrictToOwner(join(dataDir, PGDATA), { recursive: true }),
  ];
  if (changes.length > 0) {
    log.warn(
      { data_dir: dataDir, changed: changes.length, first: changes.slice(0, 10) },
      'the data folder was readable by others; its modes are owner-only again (0700 folders, 0600 files)',
    );
  }
}
