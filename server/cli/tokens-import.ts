import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'csv-stringify/sync';
import type { JWK } from 'jose';
import {
  CARD_IMPORT_COLUMNS,
  CardImportFileError,
  encryptCardItems,
  isRowProblem,
  parseCardImportCsv,
  planCardRow,
  transportKeyFrom,
  type CardImportRow,
  type PlannedCard,
  type TransportKey,
} from '../../merchant-side/card-import.ts';
import { randomLetters } from '../lib/ids.ts';
import { batchResults, callVault, CommandError, ProgressBar, Refused, submitBatch } from './vault-client.ts';

/**
 * `tessera tokens import cards.csv`: the merchant's side of a migration of
 * cards on file. Each row is encrypted here to the vault's transport key
 * (as the card fields do; merchant-side/card-import.ts, which the demo
 * shop's dashboard uses too), so the file never leaves this machine in
 * clear; the JWEs go to `POST /v1/token-batches` (at most 10,000 a request),
 * the progress is shown on stderr, and a results CSV maps each row to its
 * token or its error. Nothing of a card number is printed or written.
 */

/** The input columns; `number`, `exp_month` and `exp_year` are required. */
export const INPUT_COLUMNS = CARD_IMPORT_COLUMNS;

export const RESULT_COLUMNS = ['row', 'reference', 'status', 'token', 'brand', 'last4', 'exp_month', 'exp_year', 'error_code', 'error_message'] as const;

export const MAX_BATCH_ITEMS = 10_000;
const POLL_MS = 500;

export interface ImportOptions {
  vaultUrl: string;
  secretKey: string;
  file: string;
  out: string;
  correlationId: string | undefined;
  /** Each batch asks for network tokens for its reusable tokens. */
  networkTokens?: boolean | undefined;
  batchSize: number;
}

interface Result {
  row: number;
  reference: string | undefined;
  ok: boolean;
  token?: string;
  card?: { brand: string; last4: string; exp_month: number; exp_year: number };
  error?: { code: string; message: string };
}

/** Runs the import; answers how many rows were tokenized and how many failed. */
export async function importTokens(options: ImportOptions): Promise<{ succeeded: number; failed: number }> {
  const rows = readRows(options.file);
  const results: Result[] = [];
  const planned: PlannedCard[] = [];
  for (const row of rows) {
    const checked = planCardRow(row);
    if (!isRowProblem(checked)) planned.push(checked);
    // A row that cannot be encrypted as a card is not sent: its result is the error the vault would have given it.
    else results.push({ row: checked.row, reference: checked.reference, ok: false, error: { code: checked.code, message: `${checked.problem} (checked here; not sent)` } });
  }

  const key = await transportKey(options.vaultUrl);
  const progress = new Progress(rows.length, results.length);
  const runId = randomLetters(6);
  const batches: { id: string; rows: PlannedCard[] }[] = [];
  for (let start = 0; start < planned.length; start += options.batchSize) {
    const slice = planned.slice(start, start + options.batchSize);
    // Encrypted just before it is sent: each JWE's iat is checked against its batch's acceptance.
    const items = await encryptCardItems(slice, key);
    const body = {
      ...(options.correlationId === undefined ? {} : { correlation_id: options.correlationId }),
      ...(options.networkTokens ? { network_tokens: true } : {}),
      items,
    };
    const batch = (await submitBatch(options, '/v1/token-batches', {
      body: JSON.stringify(body),
      contentType: 'application/json',
      idempotencyKey: `tokens-import-${runId}-${batches.length}`,
    }).catch(
      (error: unknown) => {
        // The vault names the batch's item (`items.12.reference`): the merchant fixes a row of the file.
        const item = error instanceof Refused ? /^items\.(\d+)\.(\w+)$/.exec(error.param ?? '') : null;
        if (item === null) throw error;
        throw new CommandError(`row ${slice[Number(item[1])]!.row}, ${item[2]}: ${(error as Refused).message}`);
      },
    )) as { id: string };
    batches.push({ id: batch.id, rows: slice });
    progress.submitted(slice.length);
  }

  for (const batch of batches) {
    for (;;) {
      const state = (await callVault(options, 'GET', `/v1/token-batches/${batch.id}`)) as { status: string; processed: number };
      progress.processing(batch.id, state.processed);
      if (state.status === 'completed') break;
      await sleep(POLL_MS);
    }
    for (const result of await batchResults<BatchResult>(options, `/v1/token-batches/${batch.id}/results`)) {
      const source = batch.rows[result.index]!;
      results.push({
        row: source.row,
        reference: source.reference,
        ok: result.ok,
        ...(result.ok ? { token: result.token, card: result.card } : { error: result.error }),
      });
    }
  }
  progress.done();

  results.sort((a, b) => a.row - b.row);
  writeFileSync(options.out, resultsCsv(results), { mode: 0o600 });
  const succeeded = results.filter((r) => r.ok).length;
  return { succeeded, failed: results.length - succeeded };
}

function readRows(file: string): CardImportRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CommandError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return parseCardImportCsv(text).rows;
  } catch (error) {
    if (error instanceof CardImportFileError) throw new CommandError(`${file}, ${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}`);
    throw error;
  }
}

async function transportKey(vaultUrl: string): Promise<TransportKey> {
  const { keys } = (await callVault({ vaultUrl, secretKey: undefined }, 'GET', '/v1/keys')) as { keys: JWK[] };
  const key = await transportKeyFrom(keys);
  if (key === undefined) throw new CommandError('the vault published no encryption key');
  return key;
}

type BatchResult = { index: number; ok: boolean; token?: string; card?: Result['card']; error?: { code: string; message: string } };

function resultsCsv(results: Result[]): string {
  return stringify(
    results.map((r) => [
      r.row,
      r.reference ?? '',
      r.ok ? 'ok' : 'failed',
      r.token ?? '',
      r.card?.brand ?? '',
      r.card?.last4 ?? '',
      r.card?.exp_month ?? '',
      r.card?.exp_year ?? '',
      r.error?.code ?? '',
      r.error?.message ?? '',
    ]),
    { header: true, columns: [...RESULT_COLUMNS] },
  );
}

/** Rows encrypted and sent, then processed by the vault, as one bar (rows refused here count as done). */
class Progress {
  readonly #bar: ProgressBar;
  readonly #local: number;
  #sent = 0;
  readonly #processed = new Map<string, number>();

  constructor(total: number, failedHere: number) {
    this.#bar = new ProgressBar(total, 'rows');
    this.#local = failedHere;
  }

  submitted(rows: number): void {
    this.#sent += rows;
    this.#bar.draw(this.#local + this.#sent, 'encrypted and sent');
  }

  processing(batchId: string, processed: number): void {
    this.#processed.set(batchId, processed);
    this.#bar.draw(this.#processedRows(), 'processed');
  }

  done(): void {
    this.#bar.draw(this.#processedRows(), 'processed', true);
  }

  #processedRows(): number {
    return this.#local + [...this.#processed.values()].reduce((a, b) => a + b, 0);
  }
}
