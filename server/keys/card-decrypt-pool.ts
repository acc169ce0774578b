import type { KeyObject } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Card } from '../cards/card.ts';
import { VaultError, type ErrorCode } from '../errors.ts';
import { startTypeScriptWorker } from '../lib/workers.ts';

export type DecryptRequest =
  | { kind: 'open'; id: number; jwe: string; kid: string; param: string; key?: KeyObject }
  | { kind: 'forget' };

export type DecryptReply =
  | { id: number; ok: true; card: Card }
  | { id: number; ok: false; refusal: { code: ErrorCode; message: string; param: string | undefined } }
  | { id: number; ok: false; unexpected: string };

/** The pool lost a thread, or a thread failed on something other than the card: not the card's fault, so the caller retries. */
export class DecryptPoolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptPoolError';
  }
}

/** Requests sent to a thread at once: the decrypt is synchronous, so the second waits in its port and starts without a round trip. */
const IN_FLIGHT_PER_THREAD = 2;

interface Job {
  jwe: string;
  kid: string;
  key: KeyObject;
  param: string;
  resolve: (card: Card) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  /** The key object each kid was last sent as: a key reloaded by the keyring is sent again. */
  sent: Map<string, KeyObject>;
  inFlight: Map<number, Job>;
}

/**
 * Decrypts card JWEs on worker threads, so a batch of thousands uses every
 * core while the main thread keeps answering requests. The main thread
 * checks each JWE and picks its key (`cardCiphertextKey`); a thread opens it
 * (`decryptCardCiphertext`) and validates the card (`parseCardPlaintext`). Threads start at
 * the first request, and each gets a transport key (a KeyObject, cloned in
 * memory, never serialized to text) once per kid, until `forgetKeys`.
 */
export class CardDecryptPool {
  readonly #size: number;
  readonly #log: Logger;
  readonly #throttled: () => boolean;
  readonly #threads: Thread[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;

  /**
   * `throttled` says when the process has something more urgent to do (API
   * requests in flight): the pool then works on one card at a time, leaving
   * the other cores to it.
   */
  constructor(options: { threads: number; log: Logger; throttled?: () => boolean }) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError('a decrypt pool needs at least one thread');
    this.#size = options.threads;
    this.#log = options.log;
    this.#throttled = options.throttled ?? (() => false);
  }

  /**
   * The card in `jwe`, or the `VaultError` it would have been refused with;
   * `DecryptPoolError` when the pool failed instead.
   */
  open(jwe: string, kid: string, key: KeyObject, param = 'card'): Promise<Card> {
    if (this.#closed) return Promise.reject(new DecryptPoolError('the decrypt pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ jwe, kid, key, param, resolve, reject });
      this.#dispatch();
    });
  }

  /** Drops the transport keys the threads hold (after a batch): a retired key must not outlive its use there. */
  forgetKeys(): void {
    for (const thread of this.#threads) {
      thread.sent.clear();
      thread.worker.postMessage({ kind: 'forget' } satisfies DecryptRequest);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new DecryptPoolError('the decrypt pool is closed'));
    await Promise.all(this.#threads.splice(0).map((thread) => thread.worker.terminate()));
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const thread = this.#freeThread();
      if (thread === undefined) return;
      this.#send(thread, this.#queue.shift()!);
    }
  }

  #freeThread(): Thread | undefined {
    if (this.#throttled() && this.#threads.some((thread) => thread.inFlight.size > 0)) return undefined;
    let best: Thread | undefined;
    for (const thread of this.#threads) {
      if (thread.inFlight.size < IN_FLIGHT_PER_THREAD && (best === undefined || thread.inFlight.size < best.inFlight.size)) best = thread;
    }
    if (best !== undefined && best.inFlight.size === 0) return best;
    if (this.#threads.length < this.#size) return this.#start();
    return best;
  }

  #send(thread: Thread, job: Job): void {
    const id = this.#nextId++;
    thread.inFlight.set(id, job);
    thread.worker.ref();
    const fresh = thread.sent.get(job.kid) !== job.key;
    if (fresh) thread.sent.set(job.kid, job.key);
    const request: DecryptRequest = { kind: 'open', id, jwe: job.jwe, kid: job.kid, param: job.param, ...(fresh ? { key: job.key } : {}) };
    thread.worker.postMessage(request);
  }

  #start(): Thread {
    const worker = startTypeScriptWorker(new URL('./card-decrypt-worker.ts', import.meta.url));
    const thread: Thread = { worker, sent: new Map(), inFlight: new Map() };
    this.#threads.push(thread);
    // Idle until it has work: a thread only loading must not keep the process alive.
    worker.unref();
    worker.on('message', (reply: DecryptReply) => {
      const job = thread.inFlight.get(reply.id);
      thread.inFlight.delete(reply.id);
      if (thread.inFlight.size === 0) worker.unref();
      if (job !== undefined) settle(job, reply, this.#log);
      this.#dispatch();
    });
    const lost = (why: string) => {
      const index = this.#threads.indexOf(thread);
      if (index < 0) return;
      this.#threads.splice(index, 1);
      if (!this.#closed) this.#log.warn({ in_flight: thread.inFlight.size, why }, 'a card decrypt thread stopped; its requests fail and a new thread takes the next ones');
      for (const job of thread.inFlight.values()) job.reject(new DecryptPoolError('a card decrypt thread stopped'));
      thread.inFlight.clear();
      this.#dispatch();
    };
    // Only the error's name: the stack of a failed module load is no one's business, and a message could quote input.
    worker.on('error', (error) => lost(error.name));
    worker.on('exit', (code) => lost(`exit ${code}`));
    return thread;
  }
}

function settle(job: Job, reply: DecryptReply, log: Logger): void {
  if (reply.ok) return job.resolve(reply.card);
  if ('refusal' in reply) {
    const { code, message, param } = reply.refusal;
    return job.reject(new VaultError(code, { message, ...(param === undefined ? {} : { param }) }));
  }
  // A bug, not the card: this card fails with internal_error rather than the batch stalling on it.
  log.error({ error: reply.unexpected }, 'a card decrypt thread failed unexpectedly on one card');
  job.reject(new VaultError('internal_error', { param: job.param }));
}
