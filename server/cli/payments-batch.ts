import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'csv-stringify/sync';
import { randomLetters } from '../lib/ids.ts';

/**
 * `tessera payments batch ops.csv`: sends a CSV of payment operations (the
 * vault's own format: `op,payment,token,amount,currency,reference`) as one
 * `POST /v1/payment-batches`, as it is — the vault checks it whole and names
 * the line and column of any fault — then follows the batch with a progress
 * bar on stderr and writes a results CSV, one row per operation.
 */

export const RESULT_COLUMNS = ['row', 'op', 'reference', 'status', 'payment', 'payment_status', 'refund', 'error_code', 'error_message', 'decline_code'] as const;

const POLL_MS = 300;
const RESULTS_PAGE = 1000;
const SUBMIT_ATTEMPTS = 5;

export interface PaymentsBatchOptions {
  vaultUrl: string;
  secretKey: string;
  file: string;
  out: string;
}

/** A problem that stops the command, with the message to print. */
export class PaymentsBatchError extends Error {}

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
    throw new PaymentsBatchError(`cannot read ${options.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // One key for every try: a lost answer never makes a second batch.
  const idempotencyKey = `payments-batch-${randomLetters(8)}`;
  let batch: BatchState | undefined;
  for (let attempt = 1; batch === undefined; attempt++) {
    const answer = await call(options, 'POST', '/v1/payment-batches', { body: csv, contentType: 'text/csv', idempotencyKey }).catch((error: unknown) => {
      const retry = error instanceof Unanswered || (error instanceof Refused && (error.status >= 500 || error.code === 'idempotency_in_flight'));
      if (!retry || attempt >= SUBMIT_ATTEMPTS) throw error;
      return undefined;
    });
    if (answer === undefined) await sleep(500 * attempt);
    else batch = answer as BatchState;
  }

  const bar = new ProgressBar(batch.total);
  while (batch.status !== 'completed') {
    bar.draw(batch.processed);
    await sleep(POLL_MS);
    batch = (await call(options, 'GET', `/v1/payment-batches/${batch.id}`)) as BatchState;
  }
  bar.draw(batch.processed, true);

  const results: ItemResult[] = [];
  for (let after: number | undefined; ; ) {
    const page = (await call(options, 'GET', `/v1/payment-batches/${batch.id}/results?limit=${RESULTS_PAGE}${after === undefined ? '' : `&starting_after=${after}`}`)) as {
      data: ItemResult[];
      has_more: boolean;
    };
    results.push(...page.data);
    if (!page.has_more || page.data.length === 0) break;
    after = page.data.at(-1)!.index;
  }
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

class Unanswered extends PaymentsBatchError {}
class Refused extends PaymentsBatchError {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

async function call(
  options: Pick<PaymentsBatchOptions, 'vaultUrl' | 'secretKey'>,
  method: 'GET' | 'POST',
  path: string,
  send?: { body: string; contentType: string; idempotencyKey: string },
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${options.vaultUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.secretKey}`,
        ...(send === undefined ? {} : { 'content-type': send.contentType, 'idempotency-key': send.idempotencyKey }),
      },
      ...(send === undefined ? {} : { body: send.body }),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new Unanswered(`no answer from the vault at ${options.vaultUrl} (${(error as Error).name})`);
  }
  const json = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!response.ok) {
    const { code, message } = json.error ?? {};
    // A refused file's message names its line and column (`Line 4, column 3: …`).
    throw new Refused(response.status, code, `the vault refused the batch (${response.status} ${code ?? ''}): ${message ?? ''}`);
  }
  return json;
}

/** A progress bar on stderr; a line per tenth when stderr is not a terminal. */
class ProgressBar {
  readonly #total: number;
  #lastTenth = -1;

  constructor(total: number) {
    this.#total = total;
  }

  draw(done: number, final = false): void {
    const share = this.#total === 0 ? 1 : done / this.#total;
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round(share * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ${done}/${this.#total} operations${final ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor(share * 10);
    if (tenth > this.#lastTenth || final) {
      this.#lastTenth = tenth;
      process.stderr.write(`${done}/${this.#total} operations processed\n`);
    }
  }
}
