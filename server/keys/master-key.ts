import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { open, seal } from './envelope.ts';

const KEY_BYTES = 32;

/**
 * The key-encrypting key. It only ever wraps other keys (transport private
 * keys, merchant data and fingerprint keys, and the stored idempotent
 * response of a merchant creation, which carries the new secret key); card
 * data is never sealed under it directly, so rotating a merchant's data key
 * never needs it re-used.
 */
export class MasterKey {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /** From `TESSERA_MASTER_KEY` (base64, 32 bytes), else a development key generated into the data folder. */
  static load(options: { base64?: string | undefined; dataDir: string; log: Logger }): MasterKey {
    if (options.base64 !== undefined) return new MasterKey(decodeKey(options.base64, 'TESSERA_MASTER_KEY'));
    const path = join(options.dataDir, 'master.key');
    if (existsSync(path)) {
      options.log.warn({ path }, 'using the development master key from the data folder; set TESSERA_MASTER_KEY in production');
      return new MasterKey(decodeKey(readFileSync(path, 'utf8').trim(), path));
    }
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    options.log.warn({ path }, 'generated a development master key (mode 0600); set TESSERA_MASTER_KEY in production');
    return new MasterKey(key);
  }

  wrap(secret: Uint8Array, aad: string): Buffer {
    return seal(this.#key, secret, aad);
  }

  unwrap(sealed: Uint8Array, aad: string): Buffer {
    return open(this.#key, sealed, aad);
  }
}

function decodeKey(base64: string, source: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== base64.replace(/\s/g, '')) {
    throw new Error(`${source} must be ${KEY_BYTES} bytes encoded as base64`);
  }
  return key;
}
