import type { AuditLog } from '../audit/audit.ts';
import type { Queryable } from '../storage/db.ts';
import { tokenBatchBody, type TokenBatchRecord } from './serialize.ts';
import { BATCH_COLUMNS } from './service.ts';

/**
 * Completes a batch whose items are all processed and whose network tokens
 * (if it asked for them) are all settled, with its `token_batch.completed`
 * event, in `tx`; answers whether it is completed. Called by the batch's job
 * once its items are done, and by each of its network tokens' jobs as it
 * settles, so whichever comes last completes it; the batch's row lock makes
 * that one of them. The caller has locked the batch row.
 */
export async function completeTokenBatchIfSettled(tx: Queryable, audit: AuditLog, batchId: string): Promise<boolean> {
  const { rows: waiting } = await tx.query<{ items: number; network_tokens: number }>(
    `select (select count(*)::integer from token_batch_items where batch_id = $1 and state = 'pending') as items,
            (select count(*)::integer from network_tokens where batch_id = $1 and settled_at is null) as network_tokens`,
    [batchId],
  );
  if (waiting[0]!.items > 0 || waiting[0]!.network_tokens > 0) return false;
  const { rows } = await tx.query<TokenBatchRecord & { actor: string; client_ip: string; request_id: string }>(
    `update token_batches set status = 'completed', completed_at = now(), updated_at = now()
      where id = $1 and status <> 'completed'
      returning ${BATCH_COLUMNS}, actor, client_ip, request_id`,
    [batchId],
  );
  const completed = rows[0];
  if (completed === undefined) return true;
  // Last: an audit entry locks its merchant's chain until commit.
  await audit.record(
    {
      merchantId: completed.merchant_id,
      actor: completed.actor,
      action: 'token_batch.completed',
      outcome: 'succeeded',
      clientIp: completed.client_ip,
      requestId: completed.request_id,
      event: { type: 'token_batch.completed', data: tokenBatchBody(completed) },
    },
    tx,
  );
  return true;
}

/**
 * A batch that asks for network tokens requests one for each reusable token
 * it made that has none yet, once all its items are tokenized: in the order
 * of the cards' fingerprints (keyed hashes of the numbers), not the upload's
 * order — a base exported by BIN would otherwise reach one issuer at a time.
 * Each job is due a microsecond after the one before, so the claims follow
 * that order. Run again after a crash, it finds the requests made.
 */
export async function requestBatchNetworkTokens(tx: Queryable, batchId: string): Promise<number> {
  const { rowCount } = await tx.query(
    `with batch as (
       select id, merchant_id, correlation_id, actor, client_ip, request_id from token_batches where id = $1 and network_tokens
     ), wanted as (
       select b.*, t.token, case t.brand when 'american-express' then 'amex' else t.brand end as network,
              'ntok_' || replace(gen_random_uuid()::text, '-', '') as ntok,
              row_number() over (order by t.fingerprint) as n
         from batch b
         join token_batch_items i on i.batch_id = b.id and i.state = 'succeeded'
         join tokens t on t.merchant_id = b.merchant_id and t.token = i.token
        where t.reusable and t.brand in ('visa', 'mastercard', 'american-express') and tessera_token_readable(t)
          and not exists (select 1 from network_tokens x where x.merchant_id = b.merchant_id and x.token = t.token)
     ), inserted as (
       insert into network_tokens (id, merchant_id, token, network, status, requested_by, batch_id, correlation_id, actor, client_ip, request_id)
       select ntok, merchant_id, token, network, 'pending', 'batch', id, correlation_id, actor, client_ip, request_id from wanted
       returning id
     )
     select tessera_enqueue_job('network_token.provision', w.ntok, jsonb_build_object('network_token', w.ntok), w.n * 0.001, 10)
       from inserted i join wanted w on w.ntok = i.id`,
    [batchId],
  );
  return rowCount;
}
