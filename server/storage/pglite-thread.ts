import { AsyncLocalStorage } from 'node:async_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Mutex, PGlite, type Transaction } from '@electric-sql/pglite';
import { PreparedStatements } from './pglite-prepared.ts';
import type { PgliteErrorShape, PgliteNotification, PgliteReply, PgliteRequest } from './pglite-protocol.ts';

/**
 * PGlite runs Postgres compiled to WebAssembly, synchronously, on whichever
 * thread calls it. Here it gets a thread of its own, so SQL does not compete
 * with HTTP, JSON and crypto on the vault's main thread.
 */
const port = parentPort!;
const pg = await PGlite.create(String(workerData.pgdata));

const reply = (message: PgliteReply) => port.postMessage(message);

/**
 * TESSERA_PGLITE_TIMING=1 (benchmark diagnostics only): each query's answer
 * carries `execMs`, the time PGlite's protocol calls took for it on this
 * thread (what it held the thread for), not counting its wait for the lock,
 * and `waitMs`, from when the vault sent it to its first protocol call (what
 * it waited for the statements ahead of it, the one running included). Inside a transaction a statement
 * waits for nothing (the transaction holds the lock).
 */
const timing = process.env['TESSERA_PGLITE_TIMING'] === '1';
/** A statement's timing: ms on the thread so far, when it was sent (this thread's clock), its first protocol call. */
type Timing = { ms: number; arrived: number; first: number | undefined };
const timed = new AsyncLocalStorage<Timing>();
if (timing) {
  const raw = pg.execProtocolRawSync.bind(pg);
  pg.execProtocolRawSync = (message: Uint8Array) => {
    const started = performance.now();
    try {
      return raw(message);
    } finally {
      const store = timed.getStore();
      if (store !== undefined) {
        store.ms += performance.now() - started;
        store.first ??= started;
      }
    }
  };
}
const failure = (error: unknown): PgliteErrorShape => {
  const e = error as { message?: unknown; code?: unknown; detail?: unknown; constraint?: unknown };
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return { message: text(e.message) ?? String(error), code: text(e.code), detail: text(e.detail), constraint: text(e.constraint) };
};

/** Statements of one open transaction wait here until the vault sends them. */
class Inbox {
  #items: PgliteRequest[] = [];
  #waiting: ((request: PgliteRequest) => void) | undefined;

  push(request: PgliteRequest): void {
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve(request);
    } else {
      this.#items.push(request);
    }
  }

  next(): Promise<PgliteRequest> {
    const item = this.#items.shift();
    return item ? Promise.resolve(item) : new Promise((resolve) => (this.#waiting = resolve));
  }
}

const transactions = new Map<number, Inbox>();
let nextTransaction = 1;

const statements = new PreparedStatements(pg);

/**
 * Held by each transaction of ours for its whole life, and by a prepared
 * statement made outside one. PGlite's own transaction lock is internal and
 * the protocol calls a prepared statement makes bypass it, so without this a
 * call made outside a transaction could run between the statements of an
 * open one, inside it. Plain `query()` and `exec()` keep taking PGlite's own
 * lock, which `pg.transaction()` holds too, so they need not come here.
 */
const outsideTransactions = new Mutex();

/**
 * A prepared statement runs under PGlite's query lock (`runExclusive`), as
 * `query()` does, so no other statement interleaves with its protocol
 * messages; outside a transaction of ours, under `outsideTransactions` too.
 */
function runPrepared(sql: string, params: readonly unknown[], target: PGlite | Transaction) {
  const run = () => pg.runExclusive(() => statements.run(sql, params, target !== pg));
  return target === pg ? outsideTransactions.runExclusive(run) : run();
}

async function run(request: PgliteRequest & { kind: 'query' | 'exec' }, target: PGlite | Transaction) {
  if (!timing) return runStatement(request, target, undefined);
  const sentAt = 'sentAt' in request && request.sentAt !== undefined ? request.sentAt - performance.timeOrigin : undefined;
  const store: Timing = { ms: 0, arrived: sentAt ?? performance.now(), first: undefined };
  return timed.run(store, () => runStatement(request, target, store));
}

async function runStatement(
  request: PgliteRequest & { kind: 'query' | 'exec' },
  target: PGlite | Transaction,
  store: Timing | undefined,
) {
  try {
    if (request.kind === 'query') {
      const result =
        request.prepared && statements.accepts(request.sql)
          ? await runPrepared(request.sql, request.params ?? [], target)
          : await target.query(request.sql, request.params);
      const value = { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
      // waitMs: from when the vault sent the statement to its first protocol call (the statements ahead of it).
      const timings = store === undefined ? {} : { execMs: store.ms, waitMs: (store.first ?? store.arrived) - store.arrived };
      reply({ id: request.id, ok: true, value: { ...value, ...timings } });
    } else {
      await target.exec(request.sql);
      reply({ id: request.id, ok: true });
    }
  } catch (error) {
    reply({ id: request.id, ok: false, error: failure(error) });
  }
}

function begin(request: PgliteRequest & { kind: 'begin' }): void {
  const txId = nextTransaction++;
  const inbox = new Inbox();
  transactions.set(txId, inbox);
  let endId: number | undefined;
  outsideTransactions
    .runExclusive(() =>
      pg.transaction(async (tx) => {
        reply({ id: request.id, ok: true, value: txId });
        for (;;) {
          const next = await inbox.next();
          if (next.kind === 'end') {
            endId = next.id;
            if (!next.commit) await tx.rollback();
            return;
          }
          if (next.kind === 'query' || next.kind === 'exec') await run(next, tx);
        }
      }),
    )
    .then(
      () => reply({ id: endId!, ok: true }),
      (error) => reply({ id: endId ?? request.id, ok: false, error: failure(error) }),
    )
    .finally(() => transactions.delete(txId));
}

/** PGlite delivers a notification when the transaction that sent it commits, as PostgreSQL does. */
const listening = new Map<string, () => Promise<void>>();

async function listen(request: PgliteRequest & { kind: 'listen' | 'unlisten' }): Promise<void> {
  try {
    const current = listening.get(request.channel);
    if (request.kind === 'listen' && current === undefined) {
      const notify = (payload: string) => port.postMessage({ notify: request.channel, payload } satisfies PgliteNotification);
      listening.set(request.channel, await pg.listen(request.channel, notify));
    } else if (request.kind === 'unlisten' && current !== undefined) {
      listening.delete(request.channel);
      await current();
    }
    reply({ id: request.id, ok: true });
  } catch (error) {
    reply({ id: request.id, ok: false, error: failure(error) });
  }
}

port.on('message', (request: PgliteRequest) => {
  switch (request.kind) {
    case 'begin':
      return begin(request);
    case 'listen':
    case 'unlisten':
      return void listen(request);
    case 'close':
      return void pg.close().then(() => reply({ id: request.id, ok: true }));
    case 'end':
      return toTransaction(request.tx, request);
    default:
      return request.tx === undefined ? void run(request, pg) : toTransaction(request.tx, request);
  }
});

function toTransaction(txId: number, request: PgliteRequest): void {
  const inbox = transactions.get(txId);
  if (inbox) inbox.push(request);
  else reply({ id: request.id, ok: false, error: { message: 'no such transaction', code: undefined, detail: undefined, constraint: undefined } });
}
port.postMessage({ ready: true });
