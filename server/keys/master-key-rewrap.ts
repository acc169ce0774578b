import type { Logger } from 'pino';
import type { Db } from '../storage/db.ts';
import { aad, KEY_ID_BYTES } from './envelope.ts';
import type { MasterKey } from './master-key.ts';
import { RESPONSE_SEAL_PREFIX } from './response-seal.ts';

/** One kind of blob wrapped under the master key: where it is stored and what its AAD is. */
interface Wrapped {
  table: string;
  /** The row's key columns. */
  ids: string[];
  column: string;
  aad: (row: Record<string, unknown>) => string;
}

const WRAPPED: Wrapped[] = [
  { table: 'transport_keys', ids: ['kid'], column: 'private_key_sealed', aad: (r) => aad.transportKey(String(r['kid'])) },
  { table: 'merchant_data_keys', ids: ['merchant_id', 'version'], column: 'key_sealed', aad: (r) => aad.dataKey(String(r['merchant_id']), Number(r['version'])) },
  { table: 'merchants', ids: ['id'], column: 'fingerprint_key_sealed', aad: (r) => aad.fingerprintKey(String(r['id'])) },
  { table: 'cvc_keys', ids: ['bucket'], column: 'key_sealed', aad: (r) => aad.cvcKey(Number(r['bucket'])) },
  { table: 'webhook_endpoints', ids: ['id'], column: 'secret_sealed', aad: (r) => aad.webhookSecret(String(r['id'])) },
  { table: 'webhook_endpoints', ids: ['id'], column: 'previous_secret_sealed', aad: (r) => aad.webhookSecret(String(r['id'])) },
];

/**
 * `tessera keys rewrap`: moves everything wrapped under a previous master key
 * to the current one — transport private keys, merchant data and
 * fingerprint keys, CVC bucket keys, webhook secrets and sealed idempotent
 * responses — a
 * batch at a time. Each row is rewritten only if it still holds what was
 * read, so the work is restartable at any moment: killed mid-way, every
 * row holds either its old wrap (which the previous key, still configured,
 * opens) or its new one, and a second run finishes the rest.
 */
export class MasterKeyRewrap {
  readonly #db: Db;
  readonly #master: MasterKey;
  readonly #log: Logger;

  constructor(deps: { db: Db; master: MasterKey; log: Logger }) {
    this.#db = deps.db;
    this.#master = deps.master;
    this.#log = deps.log;
  }

  /** Rewraps until nothing is left or `deadline` passes; answers what it did and what is left. */
  async run(options: { batchSize?: number; deadline?: number } = {}): Promise<{ rewrapped: number; remaining: number }> {
    const batchSize = options.batchSize ?? 500;
    let rewrapped = 0;
    for (;;) {
      let done = 0;
      for (const kind of WRAPPED) done += await this.#batch(kind, batchSize);
      done += await this.#responses(batchSize);
      rewrapped += done;
      if (done === 0 || Date.now() >= (options.deadline ?? Infinity)) break;
    }
    const remaining = await this.remaining();
    if (rewrapped > 0) this.#log.info({ rewrapped, remaining }, 'master key rewrap progressed');
    return { rewrapped, remaining };
  }

  /** How many wraps are not under the current master key. */
  async remaining(): Promise<number> {
    let total = 0;
    for (const kind of WRAPPED) {
      const { rows } = await this.#db.query<{ n: number }>(`select count(*)::int as n from ${kind.table} where ${notCurrent(kind.column)}`, [this.#master.id]);
      total += rows[0]!.n;
    }
    const { rows } = await this.#db.query<{ n: number }>(
      `select count(*)::int as n from idempotency_keys where response_body like $2 || '%' and ${notCurrent(sealedResponseBytes)}`,
      [this.#master.id, RESPONSE_SEAL_PREFIX],
    );
    return total + rows[0]!.n;
  }

  async #batch(kind: Wrapped, batchSize: number): Promise<number> {
    const ids = kind.ids.join(', ');
    const { rows } = await this.#db.query<Record<string, unknown>>(
      `select ${ids}, ${kind.column} as sealed from ${kind.table} where ${notCurrent(kind.column)} limit $2`,
      [this.#master.id, batchSize],
    );
    let done = 0;
    for (const row of rows) {
      const sealed = row['sealed'] as Uint8Array;
      const match = kind.ids.map((id, i) => `${id} = $${i + 3}`).join(' and ');
      const { rowCount } = await this.#db.query(
        `update ${kind.table} set ${kind.column} = $1 where ${kind.column} = $2 and ${match}`,
        [this.#master.rewrap(sealed, kind.aad(row)), Buffer.from(sealed), ...kind.ids.map((id) => row[id])],
      );
      done += rowCount;
    }
    return done;
  }

  async #responses(batchSize: number): Promise<number> {
    const { rows } = await this.#db.query<{ scope: string; key: string; response_body: string }>(
      `select scope, key, response_body from idempotency_keys where response_body like $2 || '%' and ${notCurrent(sealedResponseBytes)} limit $3`,
      [this.#master.id, RESPONSE_SEAL_PREFIX, batchSize],
    );
    let done = 0;
    for (const row of rows) {
      const sealed = Buffer.from(row.response_body.slice(RESPONSE_SEAL_PREFIX.length), 'base64');
      const next = `${RESPONSE_SEAL_PREFIX}${this.#master.rewrap(sealed, aad.idempotentResponse(`${row.scope}/${row.key}`)).toString('base64')}`;
      const { rowCount } = await this.#db.query('update idempotency_keys set response_body = $1 where scope = $2 and key = $3 and response_body = $4', [
        next,
        row.scope,
        row.key,
        row.response_body,
      ]);
      done += rowCount;
    }
    return done;
  }
}

/** SQL: the blob in `column` is not a v2 wrap naming the current master key ($1). */
function notCurrent(column: string): string {
  return `${column} is not null and (get_byte(${column}, 0) <> 2 or substring(${column} from 2 for ${KEY_ID_BYTES}) <> $1)`;
}

/** SQL: the bytes of a sealed idempotent response (`sealed:<base64>`). */
const sealedResponseBytes = `decode(substring(response_body from ${RESPONSE_SEAL_PREFIX.length + 1}), 'base64')`;
