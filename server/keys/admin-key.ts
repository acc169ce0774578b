import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { randomBase62 } from '../lib/ids.ts';

export const adminKeyPath = (dataDir: string) => join(dataDir, 'admin.key');

/** `TESSERA_ADMIN_KEY`, else the key in `<data>/admin.key`, generated (mode 0600) on first start. */
export function loadAdminKey(options: { fromEnv?: string | undefined; dataDir: string; log: Logger }): string {
  if (options.fromEnv !== undefined) return options.fromEnv;
  const path = adminKeyPath(options.dataDir);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const key = `admin_${randomBase62(24)}`;
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
  options.log.warn({ path }, 'generated an admin key (mode 0600); set TESSERA_ADMIN_KEY in production');
  return key;
}
