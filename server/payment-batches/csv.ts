import { CsvError, parse } from 'csv-parse/sync';
import { VaultError } from '../errors.ts';
import { parseInput } from '../http/errors.ts';
import { BATCH_MAX_ITEMS } from '../batches/schema.ts';
import { PaymentBatchItem, type PaymentBatchInput } from './schema.ts';

/** The columns of a batch in CSV (api.md), in any order; a file needs `op` and the ones its operations use. */
export const CSV_COLUMNS = ['op', 'payment', 'token', 'amount', 'currency', 'reference'] as const;

/** A refusal that names the line and column at fault (1-based, as an editor shows them). */
function atFault(line: number, column: number | undefined, message: string, code: 'invalid_csv' | VaultError['code'] = 'invalid_csv', param?: string): VaultError {
  const where = column === undefined ? `Line ${line}` : `Line ${line}, column ${column}`;
  return new VaultError(code, { message: `${where}: ${message}`, ...(param === undefined ? {} : { param }), extra: { line, ...(column === undefined ? {} : { column }) } });
}

/**
 * A `text/csv` batch, parsed with csv-parse and checked whole: the header,
 * every row's shape (the JSON items' schema), and the item count. Any fault
 * refuses the file, naming its line and column; nothing of it is stored.
 * Cells are text: an empty cell is an absent value, `amount` is a whole
 * number of minor units.
 */
export function parsePaymentBatchCsv(text: string): PaymentBatchInput {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, { bom: true, info: true, skip_empty_lines: true, trim: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    if (error instanceof CsvError) {
      const detail = error as CsvError & { lines?: number; column?: number | string };
      const column = typeof detail.column === 'number' ? detail.column + 1 : undefined;
      throw atFault(detail.lines ?? 1, column, csvProblem(error.code));
    }
    throw error;
  }
  const [header, ...rows] = records;
  if (header === undefined) throw atFault(1, undefined, 'the file is empty; it needs a header row and at least one operation.');
  const names = header.record.map((name) => name.toLowerCase());
  names.forEach((name, n) => {
    if (!(CSV_COLUMNS as readonly string[]).includes(name)) throw atFault(header.info.lines, n + 1, `unknown column; the columns are ${CSV_COLUMNS.join(', ')}.`);
    if (names.indexOf(name) !== n) throw atFault(header.info.lines, n + 1, 'this column appears twice.');
  });
  if (!names.includes('op')) throw atFault(header.info.lines, undefined, 'the header has no op column.');
  if (rows.length === 0) throw atFault(header.info.lines, undefined, 'the file has no operation after its header.');
  if (rows.length > BATCH_MAX_ITEMS) throw atFault(rows[BATCH_MAX_ITEMS]!.info.lines, undefined, `a batch holds at most ${BATCH_MAX_ITEMS} operations.`);

  const items = rows.map(({ record, info }, index) => {
    // The first cell past the header's, or the first one missing.
    if (record.length !== names.length) throw atFault(info.lines, Math.min(record.length, names.length) + 1, 'this row does not have as many cells as the header.');
    const row: Record<string, unknown> = {};
    names.forEach((name, n) => {
      const cell = record[n] ?? '';
      if (cell === '') return;
      if (name === 'amount') {
        if (!/^\d{1,9}$/.test(cell)) throw atFault(info.lines, n + 1, 'amount must be a whole number of minor units.', 'parameter_invalid', `items.${index}.amount`);
        row[name] = Number(cell);
      } else {
        row[name] = cell;
      }
    });
    try {
      return parseInput(PaymentBatchItem, row);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      const field = error.param?.split('.')[0];
      const column = field === undefined ? undefined : names.indexOf(field) + 1 || undefined;
      throw atFault(info.lines, column, error.message, error.code, `items.${index}${error.param === undefined ? '' : `.${error.param}`}`);
    }
  });
  return { items };
}

/** csv-parse's codes in words (its own messages quote the file's text, which may hold anything). */
function csvProblem(code: string): string {
  switch (code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_DONT_MATCH_COLUMNS_LENGTH':
      return 'this row does not have as many cells as the header.';
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
