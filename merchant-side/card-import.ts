import { CsvError, parse } from 'csv-parse/sync';
import { CompactEncrypt, importJWK, type JWK } from 'jose';

/**
 * A migration of cards on file, on the merchant's side of the API: the
 * import CSV (its columns, parsed and checked), each row as the card
 * plaintext the vault expects, and each card encrypted to the vault's
 * transport key as the card fields encrypt one, ready for
 * `POST /v1/token-batches`. Shared by `tessera tokens import` (a file on the
 * merchant's machine) and the demo shop's dashboard (a file uploaded to the
 * shop's own server), so both read a file the same way and neither ever
 * sends a card in clear. Nothing here logs, keeps or repeats a cell's value:
 * problems name the line and column, never what was in them.
 */

/** The input columns, in the order the sample file has them; `number`, `exp_month` and `exp_year` are required. */
export const CARD_IMPORT_COLUMNS = [
  'number',
  'exp_month',
  'exp_year',
  'cvc',
  'name',
  'postal_code',
  'reference',
  'customer',
  'reusable',
  'decline_duplicates',
] as const;
export type CardImportColumn = (typeof CARD_IMPORT_COLUMNS)[number];
const REQUIRED_COLUMNS = ['number', 'exp_month', 'exp_year'] as const;

/** A fault of the file itself, where an editor would show it (1-based line and column). */
export class CardImportFileError extends Error {
  constructor(
    readonly line: number,
    readonly column: number | undefined,
    problem: string,
  ) {
    super(`${column === undefined ? `Line ${line}` : `Line ${line}, column ${column}`}: ${problem}`);
    this.name = 'CardImportFileError';
  }
}

/** A data row of the file. */
export interface CardImportRow {
  /** 1 for the first row after the header. */
  row: number;
  /** The line of the file the row ends on (a quoted cell may span lines). */
  line: number;
  /** Its non-empty cells, by column. */
  cells: Partial<Record<CardImportColumn, string>>;
}

export interface CardImportFile {
  /** The header's columns, in the file's order. */
  columns: CardImportColumn[];
  rows: CardImportRow[];
}

/**
 * Parses an import CSV with csv-parse: a header row naming known columns
 * (case-insensitive, any order, each once, the required ones present), then
 * rows with as many cells as the header; empty lines are skipped and cells
 * trimmed. An empty file is no rows. Any fault throws `CardImportFileError`.
 */
export function parseCardImportCsv(text: string): CardImportFile {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { bom: true, info: true, skip_empty_lines: true, trim: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    // csv-parse's own message quotes the file's text, which may hold a card number: only where, and what kind of fault.
    const detail = error as CsvError & { lines?: number; column?: number | string };
    throw new CardImportFileError(detail.lines ?? 1, typeof detail.column === 'number' ? detail.column + 1 : undefined, csvProblem(error.code));
  }
  const [header, ...rest] = records;
  if (header === undefined) return { columns: [], rows: [] };
  const names = header.record.map((name) => name.toLowerCase());
  const known = CARD_IMPORT_COLUMNS as readonly string[];
  names.forEach((name, n) => {
    if (!known.includes(name)) {
      // Named only when it is a plain name: a header cell could hold anything, a card number included.
      const named = /^[a-z_]{1,40}$/.test(name) ? ` ${name}` : '';
      throw new CardImportFileError(header.info.lines, n + 1, `unknown column${named}; the columns are ${CARD_IMPORT_COLUMNS.join(', ')}.`);
    }
    if (names.indexOf(name) !== n) throw new CardImportFileError(header.info.lines, n + 1, `the column ${name} appears twice.`);
  });
  const missing = REQUIRED_COLUMNS.filter((column) => !names.includes(column));
  if (missing.length > 0) throw new CardImportFileError(header.info.lines, undefined, `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}.`);
  const columns = names as CardImportColumn[];
  const rows = rest.map(({ record, info }, i): CardImportRow => {
    // The first cell past the header's, or the first one missing.
    if (record.length !== columns.length) {
      throw new CardImportFileError(info.lines, Math.min(record.length, columns.length) + 1, `this row has ${record.length} cells and the header ${columns.length}.`);
    }
    const cells: CardImportRow['cells'] = {};
    columns.forEach((column, n) => {
      if (record[n]) cells[column] = record[n];
    });
    return { row: i + 1, line: info.lines, cells };
  });
  return { columns, rows };
}

/** csv-parse's codes in words. */
function csvProblem(code: string): string {
  switch (code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted cell is never closed.';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'a quote inside a cell must be doubled ("").';
    case 'INVALID_OPENING_QUOTE':
      return 'a quote may only open a cell.';
    default:
      return 'the file is not valid CSV.';
  }
}

/** The card as the vault reads it from a JWE (api.md, "Card encryption"). */
export interface CardImportPlaintext {
  number: string;
  exp_month: number;
  exp_year: number;
  cvc?: string;
  name?: string;
  postal_code?: string;
}

/** A row ready to encrypt. */
export interface PlannedCard {
  row: number;
  line: number;
  reference: string | undefined;
  customer: string | undefined;
  card: CardImportPlaintext;
  reusable: boolean;
  declineDuplicates: boolean;
}

/** A row that cannot even be encrypted as a card: the error the vault would give it, and the cell at fault. */
export interface RowProblem {
  row: number;
  line: number;
  reference: string | undefined;
  column: CardImportColumn;
  code: 'invalid_card_number' | 'invalid_expiry' | 'parameter_invalid';
  /** What is wrong, without the cell's value. */
  problem: string;
}

const BOOLEAN: Record<string, boolean> = { true: true, yes: true, '1': true, false: false, no: false, '0': false };

/**
 * A row as the card plaintext the vault expects, or what keeps it from being
 * one: a number that is not 12–19 digits (spaces and dashes aside), an expiry
 * that is not numeric, a flag that is not true or false. Everything else
 * (the check digit, a past expiry) is the vault's to judge. `defaults` fill
 * the flags a row leaves empty.
 */
export function planCardRow(row: CardImportRow, defaults: { reusable?: boolean; declineDuplicates?: boolean } = {}): PlannedCard | RowProblem {
  const { cells } = row;
  const reference = cells.reference;
  const problem = (column: CardImportColumn, code: RowProblem['code'], text: string): RowProblem => ({ row: row.row, line: row.line, reference, column, code, problem: text });
  const digits = (cells.number ?? '').replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(digits)) return problem('number', 'invalid_card_number', 'The card number is not 12 to 19 digits.');
  if (!/^\d{1,2}$/.test(cells.exp_month ?? '')) return problem('exp_month', 'invalid_expiry', 'exp_month must be a whole number.');
  if (!/^(\d{2}|\d{4})$/.test(cells.exp_year ?? '')) return problem('exp_year', 'invalid_expiry', 'exp_year must be a whole number of 2 or 4 digits.');
  const year = Number(cells.exp_year);
  const flag = (column: 'reusable' | 'decline_duplicates', fallback: boolean) => (cells[column] === undefined ? fallback : BOOLEAN[cells[column].toLowerCase()]);
  const reusable = flag('reusable', defaults.reusable ?? true);
  if (reusable === undefined) return problem('reusable', 'parameter_invalid', 'reusable must be true or false.');
  const declineDuplicates = flag('decline_duplicates', defaults.declineDuplicates ?? false);
  if (declineDuplicates === undefined) return problem('decline_duplicates', 'parameter_invalid', 'decline_duplicates must be true or false.');
  const card: CardImportPlaintext = { number: digits, exp_month: Number(cells.exp_month), exp_year: year < 100 ? year + 2000 : year };
  if (cells.cvc) card.cvc = cells.cvc;
  if (cells.name) card.name = cells.name;
  if (cells.postal_code) card.postal_code = cells.postal_code;
  return { row: row.row, line: row.line, reference, customer: cells.customer, card, reusable, declineDuplicates };
}

export const isRowProblem = (planned: PlannedCard | RowProblem): planned is RowProblem => 'problem' in planned;

/** The vault's current transport key, ready to encrypt to. */
export interface TransportKey {
  kid: string;
  key: Awaited<ReturnType<typeof importJWK>>;
}

/** The key to encrypt to, from `GET /v1/keys`'s `keys` (the first is the current one); undefined when the vault published none. */
export async function transportKeyFrom(keys: readonly JWK[]): Promise<TransportKey | undefined> {
  const jwk = keys[0];
  if (jwk?.kid === undefined) return undefined;
  return { kid: jwk.kid, key: await importJWK(jwk, 'ECDH-ES+A256KW') };
}

/** An item of `POST /v1/token-batches`. */
export interface TokenBatchItem {
  card: string;
  reference?: string;
  customer?: string;
  reusable: boolean;
  decline_duplicates: boolean;
}

const ENCRYPT_CONCURRENCY = 8;

/**
 * Each card as a compact JWE to the transport key (ECDH-ES+A256KW, A256GCM,
 * `kid`, and `iat` now: encrypt just before sending, since the vault checks
 * `iat` against the batch's acceptance), as the batch's items, in order.
 */
export async function encryptCardItems(cards: readonly PlannedCard[], key: TransportKey): Promise<TokenBatchItem[]> {
  const items: TokenBatchItem[] = new Array(cards.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(ENCRYPT_CONCURRENCY, cards.length) }, async () => {
      while (next < cards.length) {
        const i = next++;
        const planned = cards[i]!;
        const card = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(planned.card)))
          .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: key.kid, iat: Math.floor(Date.now() / 1000) })
          .encrypt(key.key);
        items[i] = {
          card,
          ...(planned.reference === undefined ? {} : { reference: planned.reference }),
          ...(planned.customer === undefined ? {} : { customer: planned.customer }),
          reusable: planned.reusable,
          decline_duplicates: planned.declineDuplicates,
        };
      }
    }),
  );
  return items;
}
