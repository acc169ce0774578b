import { VaultError, type ErrorCode } from '../errors.ts';
import type { Queryable } from './db.ts';

export interface Page<Row> {
  rows: Row[];
  hasMore: boolean;
}

/**
 * One page of a merchant's objects, newest first, by keyset: ordered by
 * (created_at, id) and continued after the object `startingAfter` names, so
 * a page costs the same however deep it is and rows written meanwhile
 * neither repeat nor vanish. `where` holds the filters, on parameters from
 * $3 on (`params`); $1 is the merchant. An unknown `startingAfter` is the
 * object's `notFound` code on `starting_after`.
 */
export async function newestFirst<Row>(
  q: Queryable,
  list: {
    select: string;
    from: string;
    idColumn: string;
    merchantId: string;
    where: string;
    params: unknown[];
    limit: number;
    startingAfter: string | undefined;
    notFound: ErrorCode;
  },
): Promise<Page<Row>> {
  const params: unknown[] = [list.merchantId, list.limit + 1, ...list.params];
  let cursor = '';
  if (list.startingAfter !== undefined) {
    const { rows } = await q.query<{ created_at: Date }>(`select created_at from ${list.from} where merchant_id = $1 and ${list.idColumn} = $2`, [
      list.merchantId,
      list.startingAfter,
    ]);
    if (rows[0] === undefined) throw new VaultError(list.notFound, { param: 'starting_after' });
    params.push(rows[0].created_at, list.startingAfter);
    cursor = `and (created_at, ${list.idColumn}) < ($${params.length - 1}, $${params.length})`;
  }
  const { rows } = await q.query<Row>(
    `select ${list.select} from ${list.from}
      where merchant_id = $1 and ${list.where} ${cursor}
      order by created_at desc, ${list.idColumn} desc
      limit $2`,
    params,
  );
  return { rows: rows.slice(0, list.limit), hasMore: rows.length > list.limit };
}
