import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { CARDS, SANDBOX_CARDS } from './cards.ts';

/** Every card number the suite sends, plain and as a shopper types it, and every CVC. */
export const SECRET_NUMBERS: string[] = [
  ...Object.values(CARDS).flatMap((card) => [card.number, card.spaced]),
  ...Object.values(SANDBOX_CARDS),
];
export const SECRET_CVCS: string[] = Object.values(CARDS).map((card) => card.cvc);

export interface Finding {
  where: string;
  what: string;
}

const asWord = (value: string) => new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`);
const COMPACT_JWE = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;
/** A whole secret or admin key (the audit log's `sk_test_…` and last 4 is not one), or a webhook signing secret. */
export const SECRET_KEY = /sk_test_[0-9A-Za-z]{20,}|admin_[0-9A-Za-z]{20,}|whsec_[A-Za-z0-9+/]{20,}/;

/**
 * An ISO 8601 timestamp: its fraction of a second is digits that stand as a
 * word (`10:15:16.516Z`), and a stored response or token record with a
 * thousand of them holds every three-digit CVC by chance. The second form is
 * the end of one that a database page boundary cut off from its date
 * (`…T1` | page header | `2:10:05.957+00:00`): minutes, seconds, fraction.
 */
const ISO_TIMESTAMP = /\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}(?::?\d{2})?)?|\d{2}:\d{2}\.\d{1,9}(?:Z|[+-]\d{2}(?::?\d{2})?)?/g;

/** Card numbers anywhere in a text; a CVC only as a word of its own (digits inside ids, hashes and timestamps are not CVCs). */
export function cardDataIn(text: string): string | undefined {
  const number = SECRET_NUMBERS.find((n) => text.includes(n));
  if (number !== undefined) return `card number ${number.slice(0, 4)}…`;
  const withoutTimestamps = text.replace(ISO_TIMESTAMP, ' ');
  const cvc = SECRET_CVCS.find((c) => asWord(c).test(withoutTimestamps));
  return cvc === undefined ? undefined : `CVC ${cvc}`;
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((relative) => join(dir, relative))
    .filter((path) => statSync(path).isFile());
}

/**
 * A log must hold no card number, CVC, card JWE, secret or admin key,
 * webhook secret, or master key. Values are checked after JSON parsing, so a CVC is only
 * flagged as text (a number such as a duration of 516 ms is not a CVC).
 */
export function scanLog(path: string, masterKeys: string[]): Finding[] {
  const findings: Finding[] = [];
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  lines.forEach((line, index) => {
    const where = `${path}:${index + 1}`;
    if (SECRET_NUMBERS.some((n) => line.includes(n))) findings.push({ where, what: 'card number' });
    if (COMPACT_JWE.test(line)) findings.push({ where, what: 'card JWE' });
    if (SECRET_KEY.test(line)) findings.push({ where, what: 'secret key, admin key or webhook secret' });
    if (masterKeys.some((k) => line.includes(k))) findings.push({ where, what: 'master key' });
    for (const text of stringsIn(safeParse(line) ?? line)) {
      const found = cardDataIn(text);
      if (found !== undefined) findings.push({ where, what: found });
    }
  });
  return findings;
}

/**
 * Raw bytes of a data folder: card numbers anywhere; a CVC only where it
 * sits as a word inside readable text (a run of printable bytes), since three
 * digits occur by chance in any few megabytes of binary data.
 */
export function scanRawFile(path: string): Finding[] {
  return scanBytes(readFileSync(path), path);
}

function scanBytes(bytes: Buffer, where: string): Finding[] {
  const findings: Finding[] = [];
  for (const number of SECRET_NUMBERS) {
    if (bytes.includes(Buffer.from(number))) findings.push({ where, what: `card number ${number.slice(0, 4)}…` });
  }
  for (const cvc of SECRET_CVCS) {
    for (let at = bytes.indexOf(cvc); at !== -1; at = bytes.indexOf(cvc, at + 1)) {
      if (inReadableText(bytes, at, cvc.length)) findings.push({ where: `${where}@${at}`, what: `CVC ${cvc}` });
    }
  }
  return findings;
}

const isPrintable = (byte: number | undefined) => byte !== undefined && byte >= 0x20 && byte <= 0x7e;
const isAlnum = (byte: number | undefined) =>
  byte !== undefined && ((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a));

function inReadableText(bytes: Buffer, at: number, length: number): boolean {
  if (isAlnum(bytes[at - 1]) || isAlnum(bytes[at + length])) return false;
  let start = at;
  let end = at + length;
  while (start > 0 && isPrintable(bytes[start - 1])) start--;
  while (end < bytes.length && isPrintable(bytes[end])) end++;
  if (end - start < 16) return false;
  // The fraction of a second of a timestamp is not a CVC.
  const text = bytes.toString('latin1', start, end);
  const offset = at - start;
  return ![...text.matchAll(ISO_TIMESTAMP)].some((m) => offset >= m.index && offset < m.index + m[0].length);
}

/** Every text and bytea value of every table, as the vault's database holds them. */
export async function dumpTables(query: (sql: string) => Promise<Record<string, unknown>[]>): Promise<{ table: string; values: (string | Uint8Array)[] }[]> {
  const columns = (await query(
    `select table_name, column_name, data_type from information_schema.columns
      where table_schema = 'public' and data_type in ('text', 'bytea', 'jsonb', 'json', 'ARRAY', 'character varying')`,
  )) as { table_name: string; column_name: string; data_type: string }[];
  const byTable = new Map<string, string[]>();
  for (const c of columns) byTable.set(c.table_name, [...(byTable.get(c.table_name) ?? []), c.column_name]);
  const dumps: { table: string; values: (string | Uint8Array)[] }[] = [];
  for (const [table, names] of byTable) {
    const rows = await query(`select ${names.map((n) => `"${n}"`).join(', ')} from "${table}"`);
    const values: (string | Uint8Array)[] = [];
    for (const row of rows) {
      for (const value of Object.values(row)) {
        if (typeof value === 'string' || value instanceof Uint8Array) values.push(value);
        else if (value !== null && typeof value === 'object') values.push(JSON.stringify(value));
      }
    }
    dumps.push({ table, values });
  }
  return dumps;
}

/**
 * Text values as text; bytea values like raw files (card numbers anywhere, a
 * CVC only inside readable text), since three digits turn up by chance among
 * the random bytes of enough ciphertexts and hashes.
 */
export function scanTableDump(where: string, dump: { table: string; values: (string | Uint8Array)[] }): Finding[] {
  const findings: Finding[] = [];
  const at = `${where} table ${dump.table}`;
  for (const value of dump.values) {
    if (typeof value === 'string') {
      const found = cardDataIn(value);
      if (found !== undefined) findings.push({ where: `${where} table ${dump.table}`, what: found });
    } else {
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      for (const finding of scanBytes(bytes, `${where} table ${dump.table}`)) findings.push({ where: `${where} table ${dump.table}`, what: finding.what });
    }
  }
  return findings;
}

export async function withPglite<T>(dataDir: string, work: (query: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  const db = await PGlite.create(join(dataDir, 'pgdata'));
  try {
    return await work(async (sql) => (await db.query<Record<string, unknown>>(sql)).rows);
  } finally {
    await db.close();
  }
}

export async function withPostgres<T>(url: string, work: (query: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(async (sql) => (await client.query(sql)).rows as Record<string, unknown>[]);
  } finally {
    await client.end();
  }
}

function safeParse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return [...Object.keys(value), ...Object.values(value).flatMap(stringsIn)];
  return [];
}
