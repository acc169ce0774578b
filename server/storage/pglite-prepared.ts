import { protocol, type PGlite } from '@electric-sql/pglite';

/**
 * Statements run as named prepared statements on PGlite: parsed, analysed
 * and described once per text, then only bound and executed. PGlite's
 * `query()` parses and describes every time (about a third of what a
 * 35-argument function call costs its one thread).
 *
 * Only PGlite's public API: the protocol messages (`protocol.serialize`,
 * `execProtocol`) and its query lock (`runExclusive`). The protocol calls
 * are not guarded by PGlite's locks, so the caller holds them: `run` is only
 * ever called inside `pg.runExclusive` and, outside a transaction, a lock
 * every transaction holds too (pglite-thread.ts) — so no other statement or
 * transaction can interleave with the bind/execute/sync sequence or find
 * itself inside it.
 */

interface Prepared {
  name: string;
  paramTypes: number[];
  columns: { name: string; dataTypeID: number }[];
}

/** Texts prepared at most: a statement past it is run by `query()` as before (callers send a handful of fixed texts). */
const MAX_PREPARED = 64;

export class PreparedStatements {
  readonly #pg: PGlite;
  readonly #byText = new Map<string, Prepared>();
  #next = 1;

  constructor(pg: PGlite) {
    this.#pg = pg;
  }

  /** Whether `sql` has a statement already or room for one. */
  accepts(sql: string): boolean {
    return this.#byText.has(sql) || this.#byText.size < MAX_PREPARED;
  }

  /** Runs `sql` with `params`; the caller holds PGlite's query lock (see above). Answers rows as `query()` would. */
  async run<Row>(sql: string, params: readonly unknown[], inTransaction: boolean): Promise<{ rows: Row[]; affectedRows: number }> {
    const pg = this.#pg;
    const prepared = this.#byText.get(sql) ?? (await this.#prepare(sql));
    const values = params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const serializer = pg.serializers[prepared.paramTypes[i]!];
      return serializer ? serializer(value) : String(value);
    });
    // Bind, execute and sync go as one message: an error ends the sequence at that sync, so nothing is left open.
    const { messages } = await pg.execProtocol(
      concat([protocol.serialize.bind({ statement: prepared.name, values }), protocol.serialize.execute({}), protocol.serialize.sync()]),
      { syncToFs: false },
    );
    if (!inTransaction) await pg.syncToFs();
    const rows: Row[] = [];
    let affectedRows = 0;
    for (const message of messages) {
      if (message instanceof protocol.messages.DataRowMessage) {
        const row: Record<string, unknown> = {};
        message.fields.forEach((field, i) => {
          const column = prepared.columns[i]!;
          const parser = pg.parsers[column.dataTypeID];
          row[column.name] = field === null ? null : parser ? parser(field, column.dataTypeID) : field;
        });
        rows.push(row as Row);
      } else if (message instanceof protocol.messages.CommandCompleteMessage) {
        const count = Number(message.text.split(' ').at(-1));
        if (Number.isInteger(count) && !message.text.startsWith('SELECT')) affectedRows += count;
      }
    }
    return { rows, affectedRows };
  }

  async #prepare(sql: string): Promise<Prepared> {
    const name = `tessera_${this.#next++}`;
    const { messages } = await this.#pg.execProtocol(
      concat([protocol.serialize.parse({ name, text: sql }), protocol.serialize.describe({ type: 'S', name }), protocol.serialize.sync()]),
      { syncToFs: false },
    );
    const parameters = messages.find((m) => m instanceof protocol.messages.ParameterDescriptionMessage);
    const description = messages.find((m) => m instanceof protocol.messages.RowDescriptionMessage);
    const prepared: Prepared = {
      name,
      paramTypes: parameters?.dataTypeIDs ?? [],
      columns: description?.fields.map((field) => ({ name: field.name, dataTypeID: field.dataTypeID })) ?? [],
    };
    this.#byText.set(sql, prepared);
    return prepared;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
