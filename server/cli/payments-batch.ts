import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'csv-stringify/sync';
import { randomLetters } from '../lib/ids.ts';
import { batchResults, callVault, CommandError, ProgressBar, submitBatch } from './vault-client.ts';

/**
 * `tessera payments batch ops.csv`: sends a CSV of payment operations (the
 * vault's own format: `op,payment,token,amount,currency,reference`) as one
 * `POST /v1/payment-batches`, as it is — the vault checks it whole and names
 * the line and column of any fault — then follows the batch with a progress
 * bar on stderr and writes a results CSV, one row per operation.
 */

export const RESULT_COLUMNS = ['row', 'op', 'reference', 'status', 'payment', 'payment_status', 'refund', 'error_code', 'error_message', 'decline_code'] as const;

const POLL_MS = 300;

export interface PaymentsBatchOptions {
  vaultUrl: string;
  secretKey: string;
  file: string;
  out: string;
}

interface BatchState {
  id: string;
  status: string;
  total: number;
  processed: number;
}

interface ItemResult {
  index: number;
  op: string;
  reference: string | null;
  ok: boolean;
  payment?: string;
  status?: string;
  refund?: string;
  error?: { code: string; message: string; decline_code?: string };
}

export async function submitPaymentsBatch(options: PaymentsBatchOptions): Promise<{ succeeded: number; failed: number }> {
  let csv: string;
  try {
    csv = readFileSync(options.file, 'utf8');
  } catch (error) {
    throw new CommandError(`cannot read ${options.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let batch = (await submitBatch(options, '/v1/payment-batches', { body: csv, contentType: 'text/csv', idempotencyKey: `payments-batch-${randomLetters(8)}` })) as BatchState;

  const bar = new ProgressBar(batch.total, 'operations');
  while (batch.status !== 'completed') {
    bar.draw(batch.processed, 'processed');
    await sleep(POLL_MS);
    batch = (await callVault(options, 'GET', `/v1/payment-batches/${batch.id}`)) as BatchState;
  }
  bar.draw(batch.processed, 'processed', true);

  const results = await batchResults<ItemResult>(options, `/v1/payment-batches/${batch.id}/results`);
  const rows = results.map((r) => [
    r.index + 1,
    r.op,
    r.reference ?? '',
    r.ok ? 'ok' : 'failed',
    r.payment ?? '',
    r.status ?? '',
    r.refund ?? '',
    r.error?.code ?? '',
    r.error?.message ?? '',
    r.error?.decline_code ?? '',
  ]);
  writeFileSync(options.out, stringify([[...RESULT_COLUMNS], ...rows]), { mode: 0o600 });
  const succeeded = results.filter((r) => r.ok).length;
  return { succeeded, failed: results.length - succeeded };
}
