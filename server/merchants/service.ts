import { createHash, timingSafeEqual } from 'node:crypto';
import type { MerchantKeyMaterial, MerchantKeys } from '../keys/merchant-keys.ts';
import { newId, randomBase62 } from '../lib/ids.ts';
import type { Db, Queryable } from '../storage/db.ts';
import type { CreateMerchantInput, UpdateMerchantInput } from './schema.ts';

export interface Merchant extends MerchantKeyMaterial {
  id: string;
  name: string;
  allowed_origins: string[];
  unique_tokens: boolean;
  /** Every new reusable token gets a network token requested in the background. */
  network_tokens: boolean;
  webhook_url: string | null;
  publishable_key: string;
  created_at: Date;
}

/** Work done in the transaction of a merchant write, with what it wrote. */
type Within<T> = (tx: Queryable, written: T) => Promise<void>;

export interface MerchantWithKeys {
  merchant: Merchant;
  secretKey: string;
}

/** A merchant with its current data key: select ${COLUMNS} from ${MERCHANT} where … */
const COLUMNS = `m.id, m.name, m.allowed_origins, m.unique_tokens, m.network_tokens, m.webhook_url, m.publishable_key,
  k.key_sealed as data_key_sealed, m.data_key_version, m.fingerprint_key_sealed, m.created_at`;
const MERCHANT = `merchants m join merchant_data_keys k on k.merchant_id = m.id and k.version = m.data_key_version`;

export const hashSecretKey = (secretKey: string): Buffer => createHash('sha256').update(secretKey, 'utf8').digest();

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashSecretKey(a), hashSecretKey(b));
}

export const isPublishableKey = (key: string) => /^pk_test_[0-9A-Za-z]{20,64}$/.test(key);
export const isSecretKey = (key: string) => /^sk_test_[0-9A-Za-z]{20,64}$/.test(key);

/**
 * Every API request resolves its merchant by key, so lookups are cached.
 * A change to a merchant or its keys, made by any vault process, is
 * announced on `MERCHANT_CHANGES` at commit (a trigger,
 * functions/merchant_changes.sql) and clears every process's cache within
 * milliseconds; the TTL bounds what a lost notification (the listening
 * connection down) can leave stale, so a change is seen everywhere within a
 * second either way.
 */
const CACHE_TTL_MS = 1_000;
/**
 * On PGlite, once the cache follows the changes: the database is this
 * process's own (one owner, its notifications handed over in memory), so a
 * change cannot go unannounced and the TTL guards nothing; a minute, not
 * forever, all the same. A merchant whose shoppers come more than a second
 * apart no longer costs a query on each visit (a cold card mount's
 * `GET /v1/fields`: 10.6–13.9 → 5.8–6.5 ms in the vault, docs/benchmarks.md).
 * PostgreSQL keeps the second: its listening connection can drop unnoticed.
 */
const LOCAL_CACHE_TTL_MS = 60_000;
const CACHE_MAX_ENTRIES = 10_000;
export const MERCHANT_CHANGES = 'tessera_merchants';

export class MerchantDirectory {
  readonly #db: Db;
  readonly #keys: MerchantKeys;
  readonly #cache = new Map<string, { merchant: Merchant; until: number }>();
  /** Counts the cache's clearings, so a lookup that was under way during one does not put back what it read before. */
  #generation = 0;
  /** Lookups under way, by generation and key: a lookup that began before a clearing is not joined after it. */
  readonly #loading = new Map<string, Promise<Merchant | undefined>>();
  /** How long a looked-up merchant is kept: a second, unless no change can go unannounced (see LOCAL_CACHE_TTL_MS). */
  #ttlMs = CACHE_TTL_MS;

  constructor(db: Db, keys: MerchantKeys) {
    this.#db = db;
    this.#keys = keys;
  }

  /** Clears the cache whenever a merchant changes, through this process or any other; resolves once listening. */
  async followChanges(): Promise<void> {
    await this.#db.listen(MERCHANT_CHANGES, () => this.#clear());
    if (this.#db.kind === 'pglite') this.#ttlMs = LOCAL_CACHE_TTL_MS;
  }

  #clear(): void {
    this.#generation++;
    this.#cache.clear();
  }

  /**
   * Creates a merchant with fresh keys; the secret key is returned this once
   * and stored only hashed. `within` runs in the same transaction (audit
   * entry, idempotent response).
   */
  async create(input: CreateMerchantInput, within: Within<MerchantWithKeys> = async () => undefined): Promise<MerchantWithKeys> {
    return this.#db.transaction(async (tx) => {
      const created = await this.#insert(tx, input);
      await within(tx, created);
      return created;
    });
  }

  async #insert(tx: Queryable, input: CreateMerchantInput): Promise<MerchantWithKeys> {
    const id = newId('mer', 12);
    const publishableKey = `pk_test_${randomBase62(18)}`;
    const secretKey = `sk_test_${randomBase62(24)}`;
    const sealed = this.#keys.generate(id);
    await tx.query(
      `insert into merchants (id, name, allowed_origins, unique_tokens, network_tokens, webhook_url, publishable_key, data_key_version, fingerprint_key_sealed)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        id,
        input.name,
        input.allowed_origins,
        input.unique_tokens,
        input.network_tokens,
        input.webhook_url ?? null,
        publishableKey,
        sealed.dataKeyVersion,
        sealed.fingerprintKeySealed,
      ],
    );
    await tx.query('insert into merchant_data_keys (merchant_id, version, key_sealed) values ($1, $2, $3)', [id, sealed.dataKeyVersion, sealed.dataKeySealed]);
    await tx.query('insert into merchant_secret_keys (key_hash, merchant_id) values ($1, $2)', [hashSecretKey(secretKey), id]);
    const { rows } = await tx.query<Merchant>(`select ${COLUMNS} from ${MERCHANT} where m.id = $1`, [id]);
    return { merchant: rows[0]!, secretKey };
  }

  async byPublishableKey(publishableKey: string): Promise<Merchant | undefined> {
    if (!isPublishableKey(publishableKey)) return undefined;
    return this.#cached(`pk/${publishableKey}`, async () => {
      const { rows } = await this.#db.query<Merchant>(`select ${COLUMNS} from ${MERCHANT} where m.publishable_key = $1`, [publishableKey]);
      return rows[0];
    });
  }

  async bySecretKey(secretKey: string): Promise<Merchant | undefined> {
    if (!isSecretKey(secretKey)) return undefined;
    const hash = hashSecretKey(secretKey);
    // Cached under the key's hash: the secret itself is never kept in memory longer than the request.
    return this.#cached(`sk/${hash.toString('base64')}`, async () => {
      const { rows } = await this.#db.query<Merchant & { key_expires_at: Date | null }>(
        `select ${COLUMNS}, s.expires_at as key_expires_at from ${MERCHANT}
           join merchant_secret_keys s on s.merchant_id = m.id
          where s.key_hash = $1 and (s.expires_at is null or s.expires_at > now())`,
        [hash],
      );
      if (rows[0] === undefined) return undefined;
      const { key_expires_at: expiresAt, ...merchant } = rows[0];
      return { merchant, expiresAt: expiresAt ?? undefined };
    });
  }

  /**
   * A new secret key for the merchant, returned this once. Every other key
   * of the merchant stops working in `expiresInSeconds` (sooner if it was
   * already due to); 0 ends them now. `within` runs in the same transaction.
   */
  async rollSecretKey(
    merchantId: string,
    expiresInSeconds: number,
    within: Within<{ secretKey: string; previousExpiresAt: Date }> = async () => undefined,
  ): Promise<{ secretKey: string; previousExpiresAt: Date }> {
    const secretKey = `sk_test_${randomBase62(24)}`;
    const rolled = await this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ expires_at: Date }>(
        `update merchant_secret_keys
            set expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $2))
          where merchant_id = $1 and (expires_at is null or expires_at > now())
          returning now() + make_interval(secs => $2) as expires_at`,
        [merchantId, expiresInSeconds],
      );
      await tx.query('insert into merchant_secret_keys (key_hash, merchant_id) values ($1, $2)', [hashSecretKey(secretKey), merchantId]);
      const result = { secretKey, previousExpiresAt: rows[0]?.expires_at ?? new Date() };
      await within(tx, result);
      return result;
    });
    this.#clear();
    return rolled;
  }

  /**
   * Starts a new data key version for the merchant: cards sealed from now on
   * use it, and the re-encryption (`DataKeyRotation`) moves the others to it.
   */
  async rollDataKey(merchantId: string, within: Within<{ version: number }> = async () => undefined): Promise<{ version: number } | undefined> {
    const rolled = await this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ version: number }>(
        'update merchants set data_key_version = data_key_version + 1 where id = $1 returning data_key_version as version',
        [merchantId],
      );
      if (rows[0] === undefined) return undefined;
      const { version } = rows[0];
      await tx.query('insert into merchant_data_keys (merchant_id, version, key_sealed) values ($1, $2, $3)', [
        merchantId,
        version,
        this.#keys.wrapNewDataKey(merchantId, version),
      ]);
      await within(tx, { version });
      return { version };
    });
    this.#clear();
    return rolled;
  }

  async #cached(key: string, load: () => Promise<{ merchant: Merchant; expiresAt?: Date | undefined } | Merchant | undefined>): Promise<Merchant | undefined> {
    const hit = this.#cache.get(key);
    if (hit !== undefined && hit.until > Date.now()) return hit.merchant;
    // One lookup at a time per key: when an entry runs out under load, dozens of callers at once would each read it.
    const flight = `${this.#generation}/${key}`;
    let loading = this.#loading.get(flight);
    if (loading === undefined) {
      loading = this.#load(key, load).finally(() => this.#loading.delete(flight));
      this.#loading.set(flight, loading);
    }
    return loading;
  }

  async #load(key: string, load: () => Promise<{ merchant: Merchant; expiresAt?: Date | undefined } | Merchant | undefined>): Promise<Merchant | undefined> {
    const now = Date.now();
    const generation = this.#generation;
    const loaded = await load();
    if (loaded === undefined) return undefined;
    const { merchant, expiresAt } = 'merchant' in loaded ? loaded : { merchant: loaded, expiresAt: undefined };
    if (generation !== this.#generation) return merchant;
    // Unknown keys are not cached, so a burst of made-up keys cannot fill the cache; a key that expires is cached no longer than it lives.
    if (this.#cache.size >= CACHE_MAX_ENTRIES) this.#cache.clear();
    this.#cache.set(key, { merchant, until: Math.min(now + this.#ttlMs, expiresAt?.getTime() ?? Infinity) });
    return merchant;
  }

  /**
   * Every merchant, newest first, for the admin; `startingAfter` is the last
   * merchant id of the previous page. Undefined when that merchant does not exist.
   */
  async list(filter: { limit: number; startingAfter?: string | undefined }): Promise<{ merchants: Merchant[]; hasMore: boolean } | undefined> {
    const params: unknown[] = [filter.limit + 1];
    let cursor = '';
    if (filter.startingAfter !== undefined) {
      const { rows } = await this.#db.query<{ created_at: Date }>('select created_at from merchants where id = $1', [filter.startingAfter]);
      if (rows[0] === undefined) return undefined;
      params.push(rows[0].created_at, filter.startingAfter);
      cursor = 'where (m.created_at, m.id) < ($2, $3)';
    }
    const { rows } = await this.#db.query<Merchant>(
      `select ${COLUMNS} from ${MERCHANT} ${cursor} order by m.created_at desc, m.id desc limit $1`,
      params,
    );
    return { merchants: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
  }

  /** Applies the changes; `within` runs in the same transaction (audit entry, idempotent response). */
  async update(merchantId: string, changes: UpdateMerchantInput, within: Within<Merchant> = async () => undefined): Promise<Merchant> {
    const merchant = await this.#db.transaction(async (tx) => {
      const updated = await this.#applyUpdate(tx, merchantId, changes);
      await within(tx, updated);
      return updated;
    });
    this.#clear();
    return merchant;
  }

  async #applyUpdate(tx: Queryable, merchantId: string, changes: UpdateMerchantInput): Promise<Merchant> {
    const { rows } = await tx.query<Merchant>(
      `with updated as (
         update merchants set
           name = coalesce($2, name),
           allowed_origins = coalesce($3, allowed_origins),
           unique_tokens = coalesce($4, unique_tokens),
           webhook_url = case when $5::boolean then $6 else webhook_url end,
           network_tokens = coalesce($7, network_tokens)
         where id = $1
         returning *
       )
       select ${COLUMNS} from updated m join merchant_data_keys k on k.merchant_id = m.id and k.version = m.data_key_version`,
      [
        merchantId,
        changes.name ?? null,
        changes.allowed_origins ?? null,
        changes.unique_tokens ?? null,
        changes.webhook_url !== undefined,
        changes.webhook_url ?? null,
        changes.network_tokens ?? null,
      ],
    );
    return rows[0]!;
  }

  /** A merchant by id, for the vault's own background work (cached like the key lookups). */
  async byId(merchantId: string): Promise<Merchant | undefined> {
    return this.#cached(`id/${merchantId}`, async () => {
      const { rows } = await this.#db.query<Merchant>(`select ${COLUMNS} from ${MERCHANT} where m.id = $1`, [merchantId]);
      return rows[0];
    });
  }

  /** Ids of the merchants with this name that allow this origin (how the demo merchant is recognized). */
  async idsNamed(name: string, origin: string): Promise<string[]> {
    const { rows } = await this.#db.query<{ id: string }>('select id from merchants where name = $1 and $2 = any(allowed_origins)', [name, origin]);
    return rows.map((row) => row.id);
  }

  async count(): Promise<number> {
    const { rows } = await this.#db.query<{ n: number }>('select count(*)::int as n from merchants');
    return rows[0]!.n;
  }
}

/** The merchant as its owner sees it (no key material). */
export function merchantBody(merchant: Merchant) {
  return {
    id: merchant.id,
    name: merchant.name,
    allowed_origins: merchant.allowed_origins,
    unique_tokens: merchant.unique_tokens,
    network_tokens: merchant.network_tokens,
    webhook_url: merchant.webhook_url,
    publishable_key: merchant.publishable_key,
    created_at: merchant.created_at.toISOString(),
  };
}
