import { randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../storage/db.ts';
import type { CardOwner } from './card-keys.ts';
import { aad, EnvelopeError, open, seal } from './envelope.ts';
import type { MasterKey } from './master-key.ts';

export interface CvcPolicy {
  /** How long a CVC may wait for its first authorization (PCI DSS allows keeping it only until then). */
  lifetimeSeconds: number;
  /** CVCs sealed within one bucket of this many seconds share a key. */
  bucketSeconds: number;
}

export interface SealedCvc {
  cvc_sealed: Buffer;
  cvc_bucket: number;
  cvc_expires_at: Date;
}

/** A process re-reads a bucket key it holds after this long, so a key the database lost (see below) is noticed. */
const CACHE_SECONDS = 60;

/**
 * CVCs are sealed under short-lived bucket keys: one random key per bucket
 * of time, wrapped under the master key in `cvc_keys`. Once every CVC of a
 * bucket is past its lifetime, the bucket key is deleted and the table
 * rewritten (`vacuum full`), and every copy of those CVCs — erased columns,
 * old row versions, the WAL, backups — stays ciphertext nobody can open.
 *
 * `cvc_keys` is an unlogged table: its rows never reach the WAL, so a
 * destroyed key leaves no copy there either. The price: a crash of the
 * database server (not of a vault process) empties it, and CVCs waiting for
 * their first authorization are lost — the payment then goes without a CVC,
 * as after its lifetime.
 */
export class CvcKeys {
  readonly #db: Db;
  readonly #master: MasterKey;
  readonly #policy: CvcPolicy;
  readonly #cache = new Map<number, { key: Buffer; until: number }>();

  constructor(db: Db, master: MasterKey, policy: CvcPolicy) {
    this.#db = db;
    this.#master = master;
    this.#policy = policy;
  }

  get policy(): CvcPolicy {
    return this.#policy;
  }

  /**
   * Seals a CVC under the key of `now`'s bucket. Inside a transaction, pass
   * it as `within`: the bucket key is then read (or made) in it, since on
   * PGlite a statement outside an open transaction waits for it to end.
   */
  async seal(merchantId: string, owner: CardOwner, cvc: string, now = Date.now(), within?: Queryable): Promise<SealedCvc> {
    const bucket = Math.floor(now / 1000 / this.#policy.bucketSeconds);
    const key = await this.#bucketKey(bucket, true, within);
    return {
      cvc_sealed: seal(key!, Buffer.from(cvc, 'utf8'), cvcAad(merchantId, owner, bucket)),
      cvc_bucket: bucket,
      cvc_expires_at: new Date(now + this.#policy.lifetimeSeconds * 1000),
    };
  }

  /** The CVC, or undefined when its bucket key is gone (destroyed, or lost with the database's unlogged table). */
  async open(merchantId: string, owner: CardOwner, sealed: Uint8Array, bucket: number): Promise<string | undefined> {
    const key = await this.#bucketKey(bucket, false);
    if (key === undefined) return undefined;
    try {
      return open(key, sealed, cvcAad(merchantId, owner, bucket)).toString('utf8');
    } catch (error) {
      if (error instanceof EnvelopeError) return undefined;
      throw error;
    }
  }

  /**
   * Destroys the keys of buckets whose CVCs are all past their lifetime, and
   * rewrites the key table so no deleted key stays in its file.
   */
  async destroyExpired(): Promise<number> {
    const { rows } = await this.#db.query<{ bucket: string }>('delete from cvc_keys where destroy_after <= now() returning bucket');
    if (rows.length === 0) return 0;
    for (const { bucket } of rows) this.#forget(Number(bucket));
    await this.#db.exec('vacuum full cvc_keys');
    return rows.length;
  }

  async #bucketKey(bucket: number, create: boolean, q: Queryable = this.#db): Promise<Buffer | undefined> {
    const now = Date.now();
    const cached = this.#cache.get(bucket);
    if (cached !== undefined && cached.until > now) return cached.key;
    const sealed = await this.#readOrCreate(bucket, create, q);
    if (sealed === undefined) {
      this.#forget(bucket);
      return undefined;
    }
    const key = this.#master.unwrap(sealed, aad.cvcKey(bucket));
    if (cached !== undefined && !cached.key.equals(key)) cached.key.fill(0);
    this.#cache.set(bucket, { key, until: now + CACHE_SECONDS * 1000 });
    return key;
  }

  async #readOrCreate(bucket: number, create: boolean, q: Queryable): Promise<Uint8Array | undefined> {
    const read = async () =>
      (await q.query<{ key_sealed: Uint8Array }>('select key_sealed from cvc_keys where bucket = $1', [bucket])).rows[0]?.key_sealed;
    if (!create) return read();
    const destroyAfter = new Date(((bucket + 1) * this.#policy.bucketSeconds + this.#policy.lifetimeSeconds) * 1000);
    const { rows } = await q.query<{ key_sealed: Uint8Array }>(
      'insert into cvc_keys (bucket, key_sealed, destroy_after) values ($1, $2, $3) on conflict (bucket) do nothing returning key_sealed',
      [bucket, this.#master.wrap(randomBytes(32), aad.cvcKey(bucket)), destroyAfter],
    );
    // Another process made this bucket's key first: read it in a statement of its own, which sees that insert once it committed.
    return rows[0]?.key_sealed ?? read();
  }

  #forget(bucket: number): void {
    this.#cache.get(bucket)?.key.fill(0);
    this.#cache.delete(bucket);
  }
}

function cvcAad(merchantId: string, owner: CardOwner, bucket: number): string {
  return 'token' in owner ? aad.cvc(merchantId, owner.token, bucket) : aad.pendingCvc(merchantId, owner.pendingFingerprint, bucket);
}
