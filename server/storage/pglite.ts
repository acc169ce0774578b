import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { restrictToOwner } from '../lib/file-modes.ts';
import { startTypeScriptWorker } from '../lib/workers.ts';
import { checkChannelName, StorageUnavailableError, type Db, type Queryable, type QueryResult } from './db.ts';
import { isFunctionCall } from './functions.ts';
import type { PgliteErrorShape, PgliteNotification, PgliteReply, PgliteRequest } from './pglite-protocol.ts';

/**
 * PGlite runs Postgres inside this process, so only one process may open a
 * data folder at a time; a second one would corrupt it. A lock file holding
 * the owner's pid guards it, and a lock left by a killed process is taken over.
 */
function lockDataFolder(dir: string): () => void {
  const lockPath = join(dir, 'vault.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(`The data folder ${dir} is in use by another vault process (pid ${owner}).`);
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`Could not lock the data folder ${dir}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A database error from the PGlite thread, with the fields the vault maps errors by. */
class PgliteError extends Error {
  readonly code: string | undefined;
  readonly detail: string | undefined;
  readonly constraint: string | undefined;

  constructor(shape: PgliteErrorShape) {
    super(shape.message);
    this.name = 'PgliteError';
    this.code = shape.code;
    this.detail = shape.detail;
    this.constraint = shape.constraint;
  }
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };
type Unsent = PgliteRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;
type Send = <T>(request: Unsent) => Promise<T>;

/** Talks to the PGlite thread: one message per statement, answered by id; notifications go to `onNotify`. */
function connect(worker: Worker, onNotify: (notification: PgliteNotification) => void): Send {
  // Benchmark diagnostics (pglite-thread.ts): statements carry when they were sent, to time their wait on the thread.
  // Read when the database opens, as the thread reads it when it starts: a benchmark sets it after its imports ran.
  const timing = process.env['TESSERA_PGLITE_TIMING'] === '1';
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let failed: Error | undefined;
  worker.on('message', (message: PgliteReply | PgliteNotification | { ready: true }) => {
    if ('notify' in message) return onNotify(message);
    if (!('id' in message)) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.ok) waiter?.resolve(message.value);
    else waiter?.reject(new PgliteError(message.error));
  });
  const failAll = (error: Error) => {
    failed = new StorageUnavailableError(error);
    for (const waiter of pending.values()) waiter.reject(failed);
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the PGlite thread exited (code ${code})`)));
  return <T>(request: Unsent) => {
    if (failed) return Promise.reject(failed);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage(timing ? { ...request, id, sentAt: performance.timeOrigin + performance.now() } : { ...request, id });
    });
  };
}

/** The embedded database in `<dataDir>/pgdata`, served by a thread of its own. */
export async function openPglite(dataDir: string): Promise<Db> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataFolder(dataDir);
  const worker = startTypeScriptWorker(new URL('./pglite-thread.ts', import.meta.url), { pgdata: join(dataDir, 'pgdata') });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the PGlite thread exited while starting (code ${code})`)));
    });
  } catch (error) {
    await worker.terminate();
    unlock();
    throw error;
  }
  // PGlite creates its files with the process umask; they hold every sealed card, so they are the owner's alone.
  restrictToOwner(join(dataDir, 'pgdata'), { recursive: true });
  const channels = new Map<string, { listeners: Set<(payload: string) => void>; listening: Promise<unknown> }>();
  const send = connect(worker, ({ notify, payload }) => {
    for (const onNotify of channels.get(notify)?.listeners ?? []) onNotify(payload);
  });

  const queryable = (tx: number | undefined): Queryable => ({
    query: <Row>(sql: string, params?: readonly unknown[]) =>
      send<QueryResult<Row>>({ kind: 'query', sql, params: params as unknown[] | undefined, tx, prepared: isFunctionCall(sql) }),
    exec: async (sql) => void (await send({ kind: 'exec', sql, tx })),
  });

  return {
    kind: 'pglite',
    ...queryable(undefined),
    async transaction(work) {
      const tx = await send<number>({ kind: 'begin' });
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await work(queryable(tx));
      } catch (error) {
        await send({ kind: 'end', tx, commit: false }).catch(() => undefined);
        throw error;
      }
      await send({ kind: 'end', tx, commit: true });
      return result;
    },
    async listen(channel, onNotify) {
      checkChannelName(channel);
      let entry = channels.get(channel);
      if (entry === undefined) {
        const created = { listeners: new Set<(payload: string) => void>(), listening: send({ kind: 'listen', channel }) };
        created.listening.catch(() => channels.get(channel) === created && channels.delete(channel));
        channels.set(channel, (entry = created));
      }
      await entry.listening;
      const { listeners } = entry;
      // A wrapper of its own, so a function listening twice is two listeners, each removed by its own call.
      const listener = (payload: string) => onNotify(payload);
      listeners.add(listener);
      return async () => {
        if (!listeners.delete(listener) || listeners.size > 0 || channels.get(channel) !== entry) return;
        channels.delete(channel);
        await send({ kind: 'unlisten', channel });
      };
    },
    async close() {
      try {
        await send({ kind: 'close' });
        await worker.terminate();
      } finally {
        unlock();
      }
    },
  };
}
