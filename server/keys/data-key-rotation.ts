import type { Logger } from 'pino';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { Db } from '../storage/db.ts';
import type { CardOwner, CardSealer, SealedCard, StoredCard } from './card-keys.ts';
import type { MerchantKeys } from './merchant-keys.ts';

export interface RotationProgress {
  /** Cards (and details waiting to be proven) sealed again under the current data key. */
  reencrypted: number;
  /** Cards still under an older data key version, or sealed before per-token keys. */
  remaining: number;
  /** Data key versions destroyed because nothing used them any more. */
  destroyed: number;
}

/**
 * Cards under an older data key version (found per merchant through the
 * (merchant_id, data_key_version) index) or sealed before per-token keys
 * (a partial index of their own), so a round with nothing to do costs a few
 * index probes, however many tokens there are.
 */
const OUTDATED_CARDS = `
  select t.merchant_id, t.token, t.fingerprint, t.card_sealed, t.card_key_sealed, t.data_key_version
    from merchants m cross join lateral (
      select * from tokens t where t.merchant_id = m.id and t.data_key_version < m.data_key_version and t.card_sealed is not null
    ) t
  union all
  select t.merchant_id, t.token, t.fingerprint, t.card_sealed, t.card_key_sealed, t.data_key_version
    from tokens t where t.card_key_sealed is null and t.card_sealed is not null`;

/** Details waiting for a unique token that are sealed under an older data key version. */
const OUTDATED_PENDING = `
  select p.merchant_id, p.token, t.fingerprint, p.card_sealed, p.card_key_sealed, p.data_key_version
    from token_pending_cards p join merchants m on m.id = p.merchant_id
    join tokens t on t.merchant_id = p.merchant_id and t.token = p.token
   where p.data_key_version < m.data_key_version
   limit $1`;

/** Network token numbers (DPANs) sealed under an older data key version, each bound to its network token's id. */
const OUTDATED_DPANS = `
  select n.merchant_id, n.id as token, '' as fingerprint, n.dpan_sealed as card_sealed, n.dpan_key_sealed as card_key_sealed, n.data_key_version
    from network_tokens n join merchants m on m.id = n.merchant_id
   where n.dpan_sealed is not null and n.data_key_version < m.data_key_version`;

interface OldCard extends StoredCard {
  merchant_id: string;
  token: string;
  fingerprint: string;
}

/**
 * Re-encryption after a merchant's data key is rolled: every card under an
 * older version (or sealed before per-token keys) is opened and sealed
 * again under a fresh card key wrapped by the current version, a batch at a
 * time, each batch one statement; then every version nothing uses any more
 * is destroyed — its row deleted and the table rewritten. Restartable: the
 * rows themselves say what is left, and a row that changed meanwhile (paid,
 * updated, deleted) is left for the next batch.
 */
export class DataKeyRotation {
  readonly #db: Db;
  readonly #merchants: MerchantDirectory;
  readonly #cards: CardSealer;
  readonly #keys: MerchantKeys;
  readonly #log: Logger;

  constructor(deps: { db: Db; merchants: MerchantDirectory; cards: CardSealer; merchantKeys: MerchantKeys; log: Logger }) {
    this.#db = deps.db;
    this.#merchants = deps.merchants;
    this.#cards = deps.cards;
    this.#keys = deps.merchantKeys;
    this.#log = deps.log;
  }

  /** Re-encrypts batches until none is left or `deadline` (ms since the epoch) passes, then destroys unused versions. */
  async run(options: { batchSize?: number; deadline?: number } = {}): Promise<RotationProgress> {
    const batchSize = options.batchSize ?? 200;
    let reencrypted = 0;
    for (;;) {
      const done = (await this.#tokens(batchSize)) + (await this.#pending(batchSize)) + (await this.#dpans(batchSize));
      reencrypted += done;
      if (done === 0 || Date.now() >= (options.deadline ?? Infinity)) break;
    }
    const destroyed = await this.#destroyUnused();
    const remaining = await this.#remaining();
    if (reencrypted + destroyed > 0) this.#log.info({ reencrypted, remaining, destroyed }, 'data key rotation progressed');
    return { reencrypted, remaining, destroyed };
  }

  /** Tokens' cards, then details waiting to be proven: each batch read, sealed again, and written where unchanged. */
  #tokens(batchSize: number): Promise<number> {
    return this.#batch('tokens', `${OUTDATED_CARDS} limit $1`, batchSize, (row) => ({ token: row.token }));
  }

  #pending(batchSize: number): Promise<number> {
    return this.#batch('token_pending_cards', OUTDATED_PENDING, batchSize, (row) => ({ pendingFingerprint: row.fingerprint }));
  }

  /** Network token numbers, sealed like cards: the same batches, into their own columns. */
  async #dpans(batchSize: number): Promise<number> {
    const { rows } = await this.#db.query<OldCard>(`${OUTDATED_DPANS} limit $1`, [batchSize]);
    const sealed = await this.#reseal(rows, (row) => ({ token: row.token }));
    if (sealed.length === 0) return 0;
    const { rowCount } = await this.#db.query(
      `update network_tokens n set dpan_sealed = u.card_sealed, dpan_key_sealed = u.card_key_sealed, data_key_version = u.version
         from unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::integer[], $6::bytea[])
              as u(merchant_id, id, card_sealed, card_key_sealed, version, was)
        where n.merchant_id = u.merchant_id and n.id = u.id and n.dpan_sealed = u.was`,
      updateArrays(sealed),
    );
    return rowCount;
  }

  async #batch(table: 'tokens' | 'token_pending_cards', select: string, batchSize: number, ownerOf: (row: OldCard) => CardOwner): Promise<number> {
    const { rows } = await this.#db.query<OldCard>(select, [batchSize]);
    const sealed = await this.#reseal(rows, ownerOf);
    if (sealed.length === 0) return 0;
    const { rowCount } = await this.#db.query(
      `update ${table} t set card_sealed = u.card_sealed, card_key_sealed = u.card_key_sealed, data_key_version = u.version
         from unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::integer[], $6::bytea[])
              as u(merchant_id, token, card_sealed, card_key_sealed, version, was)
        where t.merchant_id = u.merchant_id and t.token = u.token and t.card_sealed = u.was`,
      updateArrays(sealed),
    );
    return rowCount;
  }

  async #reseal(rows: OldCard[], ownerOf: (row: OldCard) => CardOwner) {
    const sealed: { row: OldCard; next: SealedCard }[] = [];
    for (const row of rows) {
      const merchant = await this.#merchants.byId(row.merchant_id);
      if (merchant === undefined) continue;
      sealed.push({ row, next: await this.#cards.reseal(merchant, ownerOf(row), row, ownerOf(row)) });
    }
    return sealed;
  }

  async #destroyUnused(): Promise<number> {
    const { rows } = await this.#db.query<{ merchant_id: string; version: number }>(
      `delete from merchant_data_keys k using merchants m
        where k.merchant_id = m.id and k.version <> m.data_key_version
          and not exists (select 1 from tokens t where t.merchant_id = k.merchant_id and t.data_key_version = k.version and t.card_sealed is not null)
          and not exists (select 1 from token_pending_cards p where p.merchant_id = k.merchant_id and p.data_key_version = k.version)
          and not exists (select 1 from network_tokens n where n.merchant_id = k.merchant_id and n.data_key_version = k.version and n.dpan_sealed is not null)
        returning k.merchant_id, k.version`,
    );
    if (rows.length === 0) return 0;
    for (const row of rows) this.#keys.forget(row.merchant_id, row.version);
    // The deleted rows' bytes would stay in the table's pages until overwritten: rewrite the (small) table.
    await this.#db.exec('vacuum full merchant_data_keys');
    return rows.length;
  }

  async #remaining(): Promise<number> {
    const { rows } = await this.#db.query<{ n: number }>(
      `select (select count(*) from (${OUTDATED_CARDS}) outdated)::int
            + (select count(*) from token_pending_cards p join merchants m on m.id = p.merchant_id
                where p.data_key_version < m.data_key_version)::int
            + (select count(*) from (${OUTDATED_DPANS}) dpans)::int as n`,
    );
    return rows[0]!.n;
  }
}

function updateArrays(sealed: { row: OldCard; next: SealedCard }[]): unknown[] {
  return [
    sealed.map((s) => s.row.merchant_id),
    sealed.map((s) => s.row.token),
    sealed.map((s) => s.next.card_sealed),
    sealed.map((s) => s.next.card_key_sealed),
    sealed.map((s) => s.next.data_key_version),
    sealed.map((s) => Buffer.from(s.row.card_sealed)),
  ];
}
