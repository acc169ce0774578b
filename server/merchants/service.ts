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

const COLUMNS = `id, name, allowed_origins, unique_tokens, webhook_url, publishable_key,
  data_key_sealed, data_key_version, fingerprint_key_sealed, created_at`;

export const hashSecretKey = (secretKey: string): Buffer => createHash('sha256').update(secretKey, 'utf8').digest();

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashSecretKey(a), hashSecretKey(b));
}

export const isPublishableKey = (key: string) => /^pk_test_[0-9A-Za-z]{20,64}$/.test(key);
export const isSecretKey = (key: string) => /^sk_test_[0-9A-Za-z]{20,64}$/.test(key);

/**
 * Every API request resolves its merchant by key, so lookups are cached for a
 * few seconds. A change made through this process is seen at once; one made
 * through another vault process within the TTL.
 */
const CACHE_TTL_MS = 5_000;
const CACHE_MAX_ENTRIES = 10_000;

export class MerchantDirectory {
  readonly #db: Db;
  readonly #keys: MerchantKeys;
  readonly #cache = new Map<string, { merchant: Merchant; until: number }>();

  constructor(db: Db, keys: MerchantKeys) {
    this.#db = db;
    this.#keys = keys;
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
    const { rows } = await tx.query<Merchant>(
      `insert into merchants (id, name, allowed_origins, unique_tokens, webhook_url, publishable_key,
                              secret_key_hash, data_key_sealed, data_key_version, fingerprint_key_sealed)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       returning ${COLUMNS}`,
      [
        id,
        input.name,
        input.allowed_origins,
        input.unique_tokens,
        input.webhook_url ?? null,
        publishableKey,
        hashSecretKey(secretKey),
        sealed.dataKeySealed,
        sealed.dataKeyVersion,
        sealed.fingerprintKeySealed,
      ],
    );
    return { merchant: rows[0]!, secretKey };
  }

  async byPublishableKey(publishableKey: string): Promise<Merchant | undefined> {
    if (!isPublishableKey(publishableKey)) return undefined;
    return this.#cached(`pk/${publishableKey}`, async () => {
      const { rows } = await this.#db.query<Merchant>(`select ${COLUMNS} from merchants where publishable_key = $1`, [publishableKey]);
      return rows[0];
    });
  }

  async bySecretKey(secretKey: string): Promise<Merchant | undefined> {
    if (!isSecretKey(secretKey)) return undefined;
    const hash = hashSecretKey(secretKey);
    // Cached under the key's hash: the secret itself is never kept in memory longer than the request.
    return this.#cached(`sk/${hash.toString('base64')}`, async () => {
      const { rows } = await this.#db.query<Merchant>(`select ${COLUMNS} from merchants where secret_key_hash = $1`, [hash]);
      return rows[0];
    });
  }

  async #cached(key: string, load: () => Promise<Merchant | undefined>): Promise<Merchant | undefined> {
    const now = Date.now();
    const hit = this.#cache.get(key);
    if (hit !== undefined && hit.until > now) return hit.merchant;
    const merchant = await load();
    // Unknown keys are not cached, so a burst of made-up keys cannot fill the cache.
    if (merchant !== undefined) {
      if (this.#cache.size >= CACHE_MAX_ENTRIES) this.#cache.clear();
      this.#cache.set(key, { merchant, until: now + CACHE_TTL_MS });
    }
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
      cursor = 'where (created_at, id) < ($2, $3)';
    }
    const { rows } = await this.#db.query<Merchant>(`select ${COLUMNS} from merchants ${cursor} order by created_at desc, id desc limit $1`, params);
    return { merchants: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
  }

  /** Applies the changes; `within` runs in the same transaction (audit entry, idempotent response). */
  async update(merchantId: string, changes: UpdateMerchantInput, within: Within<Merchant> = async () => undefined): Promise<Merchant> {
    const merchant = await this.#db.transaction(async (tx) => {
      const updated = await this.#applyUpdate(tx, merchantId, changes);
      await within(tx, updated);
      return updated;
    });
    this.#cache.clear();
    return merchant;
  }

  async #applyUpdate(tx: Queryable, merchantId: string, changes: UpdateMerchantInput): Promise<Merchant> {
    const { rows } = await tx.query<Merchant>(
      `update merchants set
         name = coalesce($2, name),
         allowed_origins = coalesce($3, allowed_origins),
         unique_tokens = coalesce($4, unique_tokens),
         webhook_url = case when $5::boolean then $6 else webhook_url end
       where id = $1
       returning ${COLUMNS}`,
      [
        merchantId,
        changes.name ?? null,
        changes.allowed_origins ?? null,
        changes.unique_tokens ?? null,
        changes.webhook_url !== undefined,
        changes.webhook_url ?? null,
      ],
    );
    return rows[0]!;
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
    webhook_url: merchant.webhook_url,
    publishable_key: merchant.publishable_key,
    created_at: merchant.created_at.toISOString(),
  };
}
