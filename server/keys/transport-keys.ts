import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db, Queryable } from '../storage/db.ts';
import { randomBase62 } from '../lib/ids.ts';
import { aad } from './envelope.ts';
import type { MasterKey } from './master-key.ts';

export const JWE_ALG = 'ECDH-ES+A256KW';
export const JWE_ENC = 'A256GCM';

// A type alias (not an interface) so it fits JSON-shaped types such as the fields document's config.
export type PublicEncryptionJwk = {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  use: 'enc';
  alg: typeof JWE_ALG;
};

interface TransportKeyRow {
  kid: string;
  public_jwk: PublicEncryptionJwk;
  private_key_sealed: Uint8Array | null;
  retired_at: Date | null;
  decrypt_until: Date | null;
}

/** Serialises vault processes creating or rotating keys in one PostgreSQL database. */
const KEYRING_LOCK = 73_011_002;

/**
 * The vault's transport keys: EC P-256 pairs the card fields encrypt to.
 * Private halves are stored sealed under the master key; unsealed KeyObjects
 * are cached in memory. Storage is the single source of truth for which key
 * is published and which may decrypt, so every vault process sharing one
 * database agrees at once after a rotation: each decryption looks its `kid`
 * up by primary key, and the JWKS is read from storage.
 */
export class TransportKeyring {
  #unsealed = new Map<string, KeyObject>();
  readonly #db: Db;
  readonly #master: MasterKey;
  readonly #log: Logger;

  private constructor(db: Db, master: MasterKey, log: Logger) {
    this.#db = db;
    this.#master = master;
    this.#log = log;
  }

  /** Loads the keys, creating the first one on an empty store. */
  static async open(db: Db, master: MasterKey, log: Logger): Promise<TransportKeyring> {
    const keyring = new TransportKeyring(db, master, log);
    await db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [KEYRING_LOCK]);
      const { rows } = await tx.query('select 1 from transport_keys where retired_at is null limit 1');
      if (rows.length === 0) await keyring.#insertNewKey(tx);
    });
    await keyring.reload();
    return keyring;
  }

  /** The public JWKS: only the current key, so browsers always encrypt to it. */
  async jwks(): Promise<{ keys: PublicEncryptionJwk[] }> {
    const { rows } = await this.#db.query<{ public_jwk: PublicEncryptionJwk }>(
      `select public_jwk from transport_keys
        where retired_at is null and private_key_sealed is not null
        order by created_at desc limit 1`,
    );
    return { keys: rows.map((r) => r.public_jwk) };
  }

  /**
   * The private key for `kid` if it may decrypt at `now`; no fallback to
   * other keys. One primary-key lookup decides, so a key rotated in, retired
   * or destroyed by another vault process counts here at once.
   */
  async resolve(kid: string, now = new Date()): Promise<KeyObject | undefined> {
    const { rows } = await this.#db.query<Pick<TransportKeyRow, 'retired_at' | 'decrypt_until'> & { live: boolean }>(
      'select retired_at, decrypt_until, private_key_sealed is not null as live from transport_keys where kid = $1',
      [kid],
    );
    const row = rows[0];
    if (row === undefined || !row.live) {
      this.#unsealed.delete(kid);
      return undefined;
    }
    if (row.retired_at !== null && (row.decrypt_until === null || row.decrypt_until <= now)) return undefined;
    if (!this.#unsealed.has(kid)) await this.reload();
    return this.#unsealed.get(kid);
  }

  /**
   * The private key for `kid` as this process holds it (read again from
   * storage when it holds none), without asking storage whether it may
   * still decrypt: for a write that asks that itself, in its own statement
   * (`tessera_create_token`'s `p_kid`), so the answer holds at the write.
   */
  async held(kid: string): Promise<KeyObject | undefined> {
    if (!this.#unsealed.has(kid)) await this.reload();
    return this.#unsealed.get(kid);
  }

  /**
   * Publishes a new key and retires the current one, which keeps decrypting
   * for `graceSeconds`. `within` runs in the rotation's transaction (audit
   * entry, idempotent response).
   */
  async rotate(
    graceSeconds: number,
    within: (tx: Queryable, rotated: { kid: string; retired: string[] }) => Promise<void> = async () => undefined,
  ): Promise<{ kid: string; retired: string[] }> {
    const result = await this.#db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [KEYRING_LOCK]);
      const retired = await tx.query<{ kid: string }>(
        `update transport_keys
            set retired_at = now(), decrypt_until = now() + make_interval(secs => $1)
          where retired_at is null
          returning kid`,
        [graceSeconds],
      );
      const kid = await this.#insertNewKey(tx);
      const rotated = { kid, retired: retired.rows.map((r) => r.kid) };
      await within(tx, rotated);
      return rotated;
    });
    await this.reload();
    this.#log.info({ kid: result.kid, retired: result.retired, graceSeconds }, 'transport key rotated');
    return result;
  }

  /** Destroys the private halves of retired keys whose grace period is over. */
  async destroyExpired(): Promise<number> {
    const { rowCount } = await this.#db.query(
      `update transport_keys set private_key_sealed = null
        where private_key_sealed is not null and decrypt_until is not null and decrypt_until <= now()`,
    );
    if (rowCount > 0) {
      this.#log.info({ destroyed: rowCount }, 'retired transport keys destroyed');
      await this.reload();
    }
    return rowCount;
  }

  /** Unseals the keys that may still decrypt and forgets the destroyed ones. */
  async reload(): Promise<void> {
    const { rows } = await this.#db.query<Pick<TransportKeyRow, 'kid' | 'private_key_sealed'>>(
      'select kid, private_key_sealed from transport_keys where private_key_sealed is not null',
    );
    const unsealed = new Map<string, KeyObject>();
    for (const row of rows) {
      if (row.private_key_sealed === null) continue;
      const known = this.#unsealed.get(row.kid);
      if (known !== undefined) {
        unsealed.set(row.kid, known);
        continue;
      }
      const privateJwk = JSON.parse(this.#master.unwrap(row.private_key_sealed, aad.transportKey(row.kid)).toString('utf8'));
      unsealed.set(row.kid, createPrivateKey({ key: privateJwk, format: 'jwk' }));
    }
    this.#unsealed = unsealed;
  }

  async #insertNewKey(tx: Queryable): Promise<string> {
    const kid = `key_${randomBase62(12)}`;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicJwk = publicKey.export({ format: 'jwk' });
    const jwk: PublicEncryptionJwk = {
      kty: 'EC',
      crv: 'P-256',
      x: String(publicJwk.x),
      y: String(publicJwk.y),
      kid,
      use: 'enc',
      alg: JWE_ALG,
    };
    const sealed = this.#master.wrap(Buffer.from(JSON.stringify(privateKey.export({ format: 'jwk' }))), aad.transportKey(kid));
    await tx.query('insert into transport_keys (kid, public_jwk, private_key_sealed) values ($1, $2, $3)', [kid, JSON.stringify(jwk), sealed]);
    return kid;
  }
}
