import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { CARDS, SANDBOX_CARDS } from './cards.ts';
import './pglite-wasm.ts';

const inFours = (number: string) => number.replace(/(\d{4})(?=\d)/g, '$1 ');

/** Every card number the suite sends, plain and as a shopper may type it (its brand's spacing, or in fours). */
export const SECRET_NUMBERS: string[] = [
  ...new Set([
    ...Object.values(CARDS).flatMap((card) => [card.number, card.spaced, inFours(card.number)]),
    ...Object.values(SANDBOX_CARDS).flatMap((number) => [number, inFours(number)]),
  ]),
];
export const SECRET_CVCS: string[] = Object.values(CARDS).map((card) => card.cvc);

export interface Finding {
  where: string;
  what: string;
}

/*
 * How the leak checks find card data (every one of them: logs, tables, raw
 * data files, what the merchant page and the shop's backend see):
 *
 * - a test card number, plain or spaced, anywhere: fifteen or sixteen given
 *   digits do not turn up by chance;
 * - a test card's CVC where card data would be: after a label (`"cvc":"079"`,
 *   `cvc=079`, `CVC for visa: 079`), as a whole value (a string `"079"`, a
 *   column holding `079`), or under a key that names a CVC.
 *
 * Not as any free-standing three or four digits: those turn up by chance in
 * timestamps (`10:15:16.079Z`), UUIDs, ids, hashes and random bytes. The
 * test cards' CVCs begin with 0 (cards.ts), which no count, amount, port,
 * duration or sequence number written as text does, and which a JSON number
 * cannot: so a whole value equal to one is never anything but the CVC.
 */

/** The names a CVC goes by. */
const CVC_LABEL = String.raw`(?<![A-Za-z])(?:cvc|cvv|csc|security[\s_-]?code|card[\s_-]?code|card[\s_-]?verification)`;
/**
 * What may stand between a label and its value: up to 24 printable
 * characters that are not digits (quotes, colons, escapes, a few words), or
 * URL-encoded bytes. No digits, so it cannot reach past another number.
 */
const LABEL_GAP = String.raw`(?:%[0-9A-Fa-f]{2}|[\x20-\x2f\x3a-\x7e]){0,24}?`;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const CVCS = `(${SECRET_CVCS.map(escape).join('|')})`;
/**
 * A character of an id, a hash or base64(url) text, where given digits turn up by chance: a secret that touches one
 * is not counted (a regular expression class, for lookarounds).
 */
export const ID_CHARACTER = '[0-9A-Za-z_+/-]';
/** One of the CVCs, not glued to other digits or to base64 characters (a JWE or hash may hold the digits by chance). */
const A_CVC = String.raw`(?<!${ID_CHARACTER})${CVCS}(?!${ID_CHARACTER})`;
/** After a label and its gap, which may end in a URL-encoded byte (`cvc%22%3A%22079`). */
const LABELLED_CVC = new RegExp(String.raw`${CVC_LABEL}${LABEL_GAP}(?:(?<=%[0-9A-Fa-f]{2})|(?<!${ID_CHARACTER}))${CVCS}(?!${ID_CHARACTER})`, 'i');
/** A CVC as a quoted value after a JSON or form delimiter: `:"079"`, `, '079'`, `["079"]`, escaped or not. */
const QUOTED_CVC = new RegExp(String.raw`(?<=(?:^|[\s\[{(:,=])\\?["'])${CVCS}(?=\\?["'])`);
const BARE_CVC = new RegExp(A_CVC);
const NAMES_A_CVC = new RegExp(CVC_LABEL, 'i');

const COMPACT_JWE = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;
/** A whole secret or admin key (the audit log's `sk_test_…` and last 4 is not one), or a webhook signing secret. */
export const SECRET_KEY = /sk_test_[0-9A-Za-z]{20,}|admin_[0-9A-Za-z]{20,}|whsec_[A-Za-z0-9+/]{20,}/;

/** A test card number anywhere in a text, described without repeating it. */
export function cardNumberIn(text: string): string | undefined {
  const number = SECRET_NUMBERS.find((n) => text.includes(n));
  return number === undefined ? undefined : `card number ${number.slice(0, 4)}…`;
}

/** A test card's CVC after a label or as a quoted value inside a text (a message, serialized JSON, a data file). */
export function cvcIn(text: string): string | undefined {
  const match = LABELLED_CVC.exec(text) ?? QUOTED_CVC.exec(text);
  return match === null ? undefined : `CVC ${match[1]}`;
}

/**
 * Card data in a text: a card number anywhere, a CVC after a label, quoted,
 * or as the whole text (a column or field holding just the CVC).
 */
export function cardDataIn(text: string): string | undefined {
  const whole = text.trim();
  return cardNumberIn(text) ?? cvcIn(text) ?? (SECRET_CVCS.includes(whole) ? `CVC ${whole}` : undefined);
}

/**
 * Card data anywhere in a JSON value: in every key and string (as
 * `cardDataIn`, and inside JSON held in a string), and the CVC anywhere
 * under a key that names a CVC. The first finding, or undefined.
 */
export function cardDataInValue(value: unknown, underCvcKey = false): string | undefined {
  if (typeof value === 'string') {
    const found = cardDataIn(value);
    if (found !== undefined) return found;
    // JSON held in a string (a request body, a stored response): its keys count too.
    const parsed = /^\s*[[{]/.test(value) ? safeParse(value) : undefined;
    const inside = parsed === undefined ? undefined : cardDataInValue(parsed, underCvcKey);
    if (inside !== undefined || !underCvcKey) return inside;
    const bare = BARE_CVC.exec(value);
    return bare === null ? undefined : `CVC ${bare[1]}`;
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = cardDataInValue(item, underCvcKey);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const found = cardDataIn(key) ?? cardDataInValue(inner, underCvcKey || NAMES_A_CVC.test(key));
      if (found !== undefined) return found;
    }
  }
  return undefined;
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
 * webhook secret, or master key. A JSON line is checked value by value
 * (`cardDataInValue`), anything else as text.
 */
export function scanLog(path: string, masterKeys: string[]): Finding[] {
  const findings: Finding[] = [];
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  lines.forEach((line, index) => {
    const where = `${path}:${index + 1}`;
    if (COMPACT_JWE.test(line)) findings.push({ where, what: 'card JWE' });
    if (SECRET_KEY.test(line)) findings.push({ where, what: 'secret key, admin key or webhook secret' });
    if (masterKeys.some((k) => line.includes(k))) findings.push({ where, what: 'master key' });
    const found = cardDataInValue(line);
    if (found !== undefined) findings.push({ where, what: found });
  });
  return findings;
}

/** Raw bytes of a data file: card numbers anywhere, a CVC after a label or quoted (values have no other edges in raw bytes). */
/**
 * The files of `files` (under the data folder `dir`) that are not as a copy
 * of one of `templates` left them. A test's data folder starts as a copy of
 * a template (the vault's or the demo shop's migrated PGlite: newDataDir,
 * startTestShop) with the template's modification times, and PGlite's
 * writes set a file's time: a file of the same size and time as the same
 * file of a template holds that template's bytes (a copy keeps the time to
 * the millisecond only — Node's `cpSync` with `preserveTimestamps` rounds
 * it — and a write sets it to the moment of the write, long after),
 * which the leak step reads once, in the template. Most of a folder's
 * thousand files (the catalogs) are never written: after a full run some
 * 118,000 of 151,000 files (the step's time is mostly opening each
 * database for the table scan, so it hardly moved: docs/decisions.md,
 * "Test time").
 */
export function writtenSinceCopied(files: string[], dir: string, templates: string[]): string[] {
  return files.filter((file) => {
    const now = statSync(file);
    return !templates.some((template) => {
      const copied = statSync(join(template, relative(dir, file)), { throwIfNoEntry: false });
      return copied !== undefined && now.size === copied.size && Math.abs(now.mtimeMs - copied.mtimeMs) < 1;
    });
  });
}

export function scanRawFile(path: string): Finding[] {
  return scanBytes(readFileSync(path), path);
}

/** The card numbers by their first four digits: one pass over a file per prefix, not per number. */
const NUMBERS_BY_PREFIX = new Map<string, Buffer[]>();
for (const number of SECRET_NUMBERS) NUMBERS_BY_PREFIX.set(number.slice(0, 4), [...(NUMBERS_BY_PREFIX.get(number.slice(0, 4)) ?? []), Buffer.from(number)]);

/** Enough text before a CVC to hold its label, the widest gap and an escaped quote. */
const CONTEXT_BYTES = 64;

function scanBytes(bytes: Buffer, where: string): Finding[] {
  const findings: Finding[] = [];
  for (const [prefix, numbers] of NUMBERS_BY_PREFIX) {
    const found = new Set<string>();
    for (let at = bytes.indexOf(prefix); at !== -1 && found.size < numbers.length; at = bytes.indexOf(prefix, at + 1)) {
      for (const number of numbers) if (bytes.subarray(at, at + number.length).equals(number)) found.add(number.toString('latin1'));
    }
    for (const number of found) findings.push({ where, what: `card number ${number.slice(0, 4)}…` });
  }
  // Matching the rules against megabytes of text is slow: look at the text around each occurrence of the digits only.
  for (const cvc of SECRET_CVCS) {
    for (let at = bytes.indexOf(cvc); at !== -1; at = bytes.indexOf(cvc, at + 1)) {
      const around = bytes.toString('latin1', Math.max(0, at - CONTEXT_BYTES), Math.min(bytes.length, at + cvc.length + 2));
      if (cvcIn(around) !== undefined) {
        findings.push({ where, what: `CVC ${cvc}` });
        break;
      }
    }
  }
  return findings;
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
 * Text values as text (JSON text value by value); bytea values like raw
 * files (card numbers anywhere, a CVC after a label or quoted), or the CVC
 * as the whole value.
 */
export function scanTableDump(where: string, dump: { table: string; values: (string | Uint8Array)[] }): Finding[] {
  const at = `${where} table ${dump.table}`;
  const findings: Finding[] = [];
  for (const value of dump.values) {
    if (typeof value === 'string') {
      const found = cardDataInValue(value);
      if (found !== undefined) findings.push({ where: at, what: found });
    } else {
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const whole = bytes.toString('latin1').trim();
      if (SECRET_CVCS.includes(whole)) findings.push({ where: at, what: `CVC ${whole}` });
      else findings.push(...scanBytes(bytes, at));
    }
  }
  return findings;
}

/**
 * PGlite's own start parameters, with a shared buffer pool of 1 MB instead of
 * PostgreSQL's default 128 MB: a scan reads each table once, and setting up
 * the 16,384 buffers of the default pool was most of what opening a data
 * folder cost (0.8 s of CPU of the 1 s, measured with --liftoff-only; 0.3 s
 * with 1 MB). The rows are the same whatever the pool's size: PostgreSQL
 * reads the pages it has no room for again.
 */
const SCAN_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=1MB'];

/** Opens the embedded database of the data folder `dataDir` for a scan (or a check of what it holds), and closes it after `work`. */
export async function withPglite<T>(dataDir: string, work: (query: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
  const db = await PGlite.create(join(dataDir, 'pgdata'), { startParams: SCAN_START_PARAMS });
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
