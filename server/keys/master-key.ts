import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { EnvelopeError, keyIdOf, openWithKeyId, sealWithKeyId } from './envelope.ts';

const KEY_BYTES = 32;

interface RingKey {
  key: Buffer;
  /** 8 bytes of HMAC(key, label): names the key in what it wraps without revealing anything of it. */
  id: Buffer;
}

const ringKey = (key: Buffer): RingKey => ({ key, id: createHmac('sha256', key).update('tessera/master-key-id').digest().subarray(0, 8) });

/**
 * The key-encrypting key. It only ever wraps other keys (transport private
 * keys, merchant data and fingerprint keys, CVC bucket keys, and the stored
 * idempotent response of a merchant creation, which carries a secret key);
 * card data is never sealed under it directly.
 *
 * It is a ring: the current key wraps, and keys it replaced
 * (`TESSERA_MASTER_KEY_PREVIOUS`) still unwrap until `tessera keys rewrap`
 * has moved everything to the current one. Each wrap names its key by id.
 */
export class MasterKey {
  readonly #current: RingKey;
  readonly #all: RingKey[];

  private constructor(current: Buffer, previous: Buffer[]) {
    this.#current = ringKey(current);
    this.#all = [this.#current, ...previous.map(ringKey)];
  }

  /** From `TESSERA_MASTER_KEY` (base64, 32 bytes) and the previous keys, else a development key generated into the data folder. */
  static load(options: { base64?: string | undefined; previous?: readonly string[]; dataDir: string; log: Logger }): MasterKey {
    const previous = (options.previous ?? []).map((base64, i) => decodeKey(base64, `TESSERA_MASTER_KEY_PREVIOUS[${i}]`));
    if (options.base64 !== undefined) return new MasterKey(decodeKey(options.base64, 'TESSERA_MASTER_KEY'), previous);
    const path = join(options.dataDir, 'master.key');
    if (existsSync(path)) {
      options.log.warn({ path }, 'using the development master key from the data folder; set TESSERA_MASTER_KEY in production');
      return new MasterKey(decodeKey(readFileSync(path, 'utf8').trim(), path), previous);
    }
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    options.log.warn({ path }, 'generated a development master key (mode 0600); set TESSERA_MASTER_KEY in production');
    return new MasterKey(key, previous);
  }

  /** The current key's id, as wraps name it. */
  get id(): Buffer {
    return this.#current.id;
  }

  wrap(secret: Uint8Array, aad: string): Buffer {
    return sealWithKeyId(this.#current.key, this.#current.id, secret, aad);
  }

  unwrap(sealed: Uint8Array, aad: string): Buffer {
    const id = keyIdOf(sealed);
    if (id !== undefined) {
      const ring = this.#all.find((k) => k.id.equals(id));
      if (ring === undefined) throw new EnvelopeError('wrapped under a master key this vault does not hold');
      return openWithKeyId(ring.key, sealed, aad);
    }
    // Wraps from before key ids were recorded: one of the ring's keys made them.
    for (const ring of this.#all) {
      try {
        return openWithKeyId(ring.key, sealed, aad);
      } catch (error) {
        if (!(error instanceof EnvelopeError)) throw error;
      }
    }
    throw new EnvelopeError('sealed blob failed authentication');
  }

  /** Whether `sealed` is wrapped under the current key (else `rewrap` has work to do on it). */
  isCurrent(sealed: Uint8Array): boolean {
    return keyIdOf(sealed)?.equals(this.#current.id) ?? false;
  }

  /** Unwraps with whichever key of the ring made it, and wraps again under the current key. */
  rewrap(sealed: Uint8Array, aad: string): Buffer {
    return this.wrap(this.unwrap(sealed, aad), aad);
  }
}

function decodeKey(base64: string, source: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== base64.replace(/\s/g, '')) {
    throw new Error(`${source} must be ${KEY_BYTES} bytes encoded as base64`);
  }
  return key;
}
