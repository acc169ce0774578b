import type { VaultError } from '../errors.ts';
import type { Queryable } from '../storage/db.ts';

/** The tables of the two kinds of batch: names from this list only, never from a request. */
type Tables = { batches: 'token_batches'; items: 'token_batch_items' } | { batches: 'payment_batches'; items: 'payment_batch_items' };

/**
 * A batch of this merchant, read with `columns`; another merchant's is
 * `notFound()`, as an unknown one, so a batch id tells nobody else anything.
 */
export async function findBatch<Row>(db: Queryable, tables: Tables, columns: string, merchantId: string, id: string, notFound: () => VaultError): Promise<Row> {
  const { rows } = await db.query<Row>(`select ${columns} from ${tables.batches} where merchant_id = $1 and id = $2`, [merchantId, id]);
  if (rows[0] === undefined) throw notFound();
  return rows[0];
}

/**
 * The outcomes of a batch's processed items in item order, after the index
 * `startingAfter`. Items still waiting are not listed yet: while the batch
 * is not `completed`, a later read may find more.
 */
export async function processedItems<Row>(
  db: Queryable,
  tables: Tables,
  columns: string,
  batchId: string,
  page: { limit: number; startingAfter: number | undefined },
): Promise<{ results: Row[]; hasMore: boolean }> {
  const { rows } = await db.query<Row>(
    `select ${columns}
       from ${tables.items}
      where batch_id = $1 and state <> 'pending' and item_index > $2
      order by item_index
      limit $3`,
    [batchId, page.startingAfter ?? -1, page.limit + 1],
  );
  return { results: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
}
