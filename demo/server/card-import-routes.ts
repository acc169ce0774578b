import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import {
  CardImportFileError,
  encryptCardItems,
  isRowProblem,
  parseCardImportCsv,
  planCardRow,
  transportKeyFrom,
  type CardImportColumn,
  type CardImportFile,
  type PlannedCard,
} from '../../merchant-side/card-import.ts';
import { newIdempotencyKey, type Shop } from './context.ts';
import { fromVault, parseBody, ShopError } from './errors.ts';
import { unanswered, VaultRequestError } from './vault-client.ts';
import { VaultTokenBatches, type VaultTokenBatch, type VaultTokenBatchResult } from './vault-token-batches.ts';

/** The dashboard takes a file of up to this many cards, as one token batch; the CLI takes any number. */
export const MAX_IMPORT_ROWS = 1000;
/** 1,000 rows with names and postal codes fit in a third of this. */
const BODY_LIMIT = '512kb';
const RESULTS_PAGE = 10;
/** A creation call that got no answer is sent again, same Idempotency-Key and body, this many times. */
const TRIES = 3;
const RETRY_DELAY_MS = 300;

/** Text the shop or the vault stores in the clear (a reference, a customer, the migration's name) holds no card-like run of digits. */
const CARD_LIKE = /\d[\d -]{10,}\d/;

const NewImport = z.strictObject({
  /** The file as the merchant chose or pasted it: read here, in memory, and dropped with the request. */
  csv: z.string().max(512 * 1024),
  /** The migration's name at the vault (the batch's `correlation_id`). */
  correlationId: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .regex(/^[\x20-\x7e]+$/)
    .optional(),
  networkTokens: z.boolean().default(false),
  declineDuplicates: z.boolean().default(false),
});
const BatchId = z.string().regex(/^tbat_[A-Za-z0-9]{1,64}$/);
/** `after`: the last row the page shows; the next page starts after it. */
const ResultsQuery = z.strictObject({
  after: z
    .string()
    .regex(/^\d{1,5}$/)
    .transform(Number)
    .pipe(z.number().int().min(1).max(MAX_IMPORT_ROWS))
    .optional(),
});

const importView = (batch: VaultTokenBatch) => ({
  id: batch.id,
  status: batch.status,
  correlationId: batch.correlation_id,
  total: batch.total,
  processed: batch.processed,
  succeeded: batch.succeeded,
  failed: batch.failed,
  createdAt: batch.created_at,
  completedAt: batch.completed_at,
  networkTokens: batch.network_tokens ?? null,
});

/** Every row of a dashboard import is sent, in order, so item `index` is the file's row `index + 1`. */
const resultView = (result: VaultTokenBatchResult) => ({
  row: result.index + 1,
  reference: result.reference,
  ok: result.ok,
  token: result.token ?? null,
  card: result.card ? { brand: result.card.brand, last4: result.card.last4, expMonth: result.card.exp_month, expYear: result.card.exp_year } : null,
  error: result.error ? { code: result.error.code, message: result.error.message } : null,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A refusal of the file, naming where it is at fault (never what the cell held). */
const atFault = (line: number, column: number | undefined, problem: string) => new ShopError(400, 'invalid_csv', new CardImportFileError(line, column, problem).message);
const columnOf = (file: CardImportFile, column: CardImportColumn) => file.columns.indexOf(column) + 1 || undefined;

/**
 * The request body of a card import, parsed for signed-in dashboard
 * sessions only and with its own limit: a file of cards is far larger than
 * anything else the pages send (16 KiB).
 */
export function cardImportBody(shop: Shop): RequestHandler {
  const parser = express.json({ limit: BODY_LIMIT });
  return async (req, res, next) => {
    await shop.sessions.requireDashboard(req);
    parser(req, res, (error?: unknown) => {
      if ((error as { type?: unknown } | undefined)?.type === 'entity.too.large') {
        next(new ShopError(413, 'file_too_large', `The file is larger than the dashboard takes (${BODY_LIMIT.replace('kb', ' KB')}). Split it, or use npm run tessera -- tokens import.`));
      } else {
        next(error);
      }
    });
  };
}

/**
 * "Migrate cards on file" on the dashboard: the merchant's legacy card base
 * as a CSV (the columns of `tessera tokens import`), which this server reads
 * in memory, checks whole (a fault names its line and column), encrypts row
 * by row to the vault's transport key with the CLI's own code
 * (merchant-side/card-import.ts) and sends as one token batch. The page then
 * follows the batch and reads its results, paged. No card number is stored,
 * logged or sent back to the page: answers carry token names, brands, last 4
 * and error codes.
 */
export function cardImportRoutes(shop: Shop): Router {
  const { db, vault, sessions, log } = shop;
  const batches = new VaultTokenBatches(vault);
  const router = Router();
  const atVault = <T>(call: Promise<T>) => call.catch((error: unknown) => Promise.reject(fromVault(error, log)));

  router.post('/card-imports', async (req, res) => {
    await sessions.requireDashboard(req);
    const input = parseBody(NewImport, req.body);
    if (input.correlationId !== undefined && CARD_LIKE.test(input.correlationId)) {
      throw new ShopError(400, 'parameter_invalid', 'Leave long numbers out of the migration’s name: the vault keeps it in the clear.');
    }
    const file = readFile(input.csv);
    const cards = file.rows.map((row): PlannedCard => {
      const planned = planCardRow(row, { declineDuplicates: input.declineDuplicates });
      if (isRowProblem(planned)) throw atFault(planned.line, columnOf(file, planned.column), planned.problem);
      for (const column of ['reference', 'customer'] as const) {
        if (CARD_LIKE.test(row.cells[column] ?? '')) throw atFault(row.line, columnOf(file, column), `a ${column} must not look like a card number: the vault keeps it in the clear.`);
      }
      return planned;
    });

    const key = await transportKeyFrom(await atVault(batches.transportKeys()));
    if (key === undefined) throw new ShopError(502, 'vault_error', 'The vault publishes no key to encrypt the cards to. Nothing was sent.');
    const body = {
      ...(input.correlationId === undefined ? {} : { correlation_id: input.correlationId }),
      network_tokens: input.networkTokens,
      // Encrypted just before sending: the vault checks each card's iat against the batch's acceptance.
      items: await encryptCardItems(cards, key),
    };
    const idempotencyKey = newIdempotencyKey('card-import');
    let batch: VaultTokenBatch;
    for (let tries = 1; ; tries++) {
      try {
        batch = await batches.create(body, idempotencyKey);
        break;
      } catch (error) {
        if (unanswered(error) && tries < TRIES) {
          await sleep(RETRY_DELAY_MS * tries);
          continue;
        }
        // The vault names the item and field it refused (`items.3.customer`): the merchant fixes that cell of the file.
        const item = error instanceof VaultRequestError ? /^items\.(\d+)\.(\w+)$/.exec(error.param ?? '') : null;
        const row = item === null ? undefined : cards[Number(item[1])];
        if (row === undefined || !(error instanceof VaultRequestError)) throw fromVault(error, log);
        const column = (file.columns as string[]).indexOf(item![2]!) + 1 || undefined;
        throw atFault(row.line, column, `the vault refused this cell (${error.code}). Nothing was imported.`);
      }
    }
    log.info({ token_batch: batch.id, rows: cards.length, network_tokens: input.networkTokens }, 'card import submitted');
    res.status(202).json({ import: importView(batch) });
  });

  // Progress, and whether the vault's token_batch.completed event has reached the shop's webhook receiver.
  router.get('/card-imports/:id', async (req, res) => {
    await sessions.requireDashboard(req);
    const id = parseBody(BatchId, req.params['id']);
    const batch = await batches.one(id).catch((error: unknown) => {
      if (error instanceof VaultRequestError && error.code === 'token_batch_not_found') throw new ShopError(404, 'import_not_found', 'The vault has no such card import.');
      throw fromVault(error, log);
    });
    const { rows } = await db.query<{ received_at: Date }>(`select received_at from webhook_events where type = 'token_batch.completed' and object_id = $1`, [id]);
    res.json({ import: importView(batch), webhook: rows[0] === undefined ? null : { receivedAt: rows[0].received_at.toISOString() } });
  });

  router.get('/card-imports/:id/results', async (req, res) => {
    await sessions.requireDashboard(req);
    const id = parseBody(BatchId, req.params['id']);
    const { after } = parseBody(ResultsQuery, req.query);
    // Row n is item n - 1.
    const page = await atVault(batches.results(id, RESULTS_PAGE, after === undefined ? undefined : after - 1));
    res.json({ results: page.data.map(resultView), hasMore: page.has_more });
  });

  return router;
}

/** The uploaded text as an import file of 1 to `MAX_IMPORT_ROWS` rows, or the shop's refusal naming the line and column at fault. */
function readFile(csv: string): CardImportFile {
  let file: CardImportFile;
  try {
    file = parseCardImportCsv(csv);
  } catch (error) {
    if (error instanceof CardImportFileError) throw new ShopError(400, 'invalid_csv', error.message);
    throw error;
  }
  if (file.columns.length === 0) throw atFault(1, undefined, 'the file is empty. Download the sample to see its columns.');
  if (file.rows.length === 0) throw atFault(1, undefined, 'the file has no card after its header.');
  if (file.rows.length > MAX_IMPORT_ROWS) {
    throw atFault(file.rows[MAX_IMPORT_ROWS]!.line, undefined, `the dashboard takes at most ${MAX_IMPORT_ROWS.toLocaleString('en')} cards a file. Split it, or use npm run tessera -- tokens import.`);
  }
  return file;
}
