import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

const FILE = 'vault-secret-key';
/** What write-file-atomic names its temporary file: `<file>.<number>`. */
const UNFINISHED_WRITE = new RegExp(`^${FILE}\\.\\d+$`);
const SECRET_KEY = /^sk_[0-9A-Za-z_]{1,128}$/;

/** Where the shop keeps the secret key it rolled to last, in its own data folder. */
export const rolledSecretKeyPath = (shopDataDir: string) => join(shopDataDir, FILE);

/**
 * The secret key the shop calls the vault with: the one it rolled to last
 * (`<shop data>/vault-secret-key`), else `fallback`, the key the vault wrote
 * into `demo-merchant.json` on its first start. That file is the vault's and
 * is never rewritten, so after a roll it holds a key that stops working.
 * Errors are fixed sentences: the file holds a secret.
 */
export function loadSecretKey(shopDataDir: string, fallback: string): string {
  // A write killed between its temporary file and the rename: the rename never happened, so the key in use is the one below.
  for (const name of readdirSync(shopDataDir).filter((entry) => UNFINISHED_WRITE.test(entry))) rmSync(join(shopDataDir, name), { force: true });
  const path = rolledSecretKeyPath(shopDataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return fallback;
    throw new Error(`${path} could not be read (${code ?? 'unknown error'}).`);
  }
  const key = text.trim();
  if (!SECRET_KEY.test(key)) throw new Error(`${path} does not hold a secret key (sk_…).`);
  return key;
}

/**
 * Saves a rolled key for the next start: owner-only (0600), written to a
 * temporary file, flushed to disk and renamed over the old one, so a crash
 * leaves the old key or the new one, never a part of either.
 */
export async function saveSecretKey(shopDataDir: string, secretKey: string): Promise<void> {
  await writeFileAtomic(rolledSecretKeyPath(shopDataDir), `${secretKey}\n`, { mode: 0o600, fsync: true });
}
