import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { maskNumbers, type Logger } from '../log.ts';
import { VAULT_ORIGIN_PREFIX, type Db, type Queryable } from '../storage/db.ts';
import { claimJobs, completeJob, dueKinds, EXPIRED_JOB, failJob, JOBS_CHANNEL, renewLeases, sweepJobs, type ClaimedJob } from './queue.ts';

/** A claimed job as its handler sees it. */
export interface Job<Payload> {
  id: string;
  kind: string;
  key: string | null;
  payload: Payload;
  /** This claim's number, from 1; the job is dead once a claim numbered `maxAttempts` fails. */
  attempt: number;
  maxAttempts: number;
  /**
   * Aborted when this process no longer holds the claim (the lease ran out
   * and the job went back to the queue) or, past the stop grace, when the
   * vault is closing: stop and throw.
   */
  signal: AbortSignal;
  /**
   * Marks the job done inside `tx`, the transaction that applies its
   * effects, so both commit or neither does. Throws `JobClaimLost` when the
   * claim is gone, which rolls `tx` back: the job's next claim does the work.
   * A handler that never calls it has its job completed after it returns.
   */
  complete(tx: Queryable): Promise<void>;
  /**
   * Marks the job done inside one statement of the handler's own — a SQL
   * function that applies the job's effects and calls `tessera_complete_job`
   * with this claim — which saves a transaction's round trips. `statement`
   * must throw `JobClaimLost` when that call answers false (and roll back).
   */
  completeIn<T>(statement: (claim: { id: string; claim: string }) => Promise<T>): Promise<T>;
}

export interface JobHandler<Payload> {
  kind: string;
  /** The payload is parsed with it before `run`; a payload it refuses makes the job dead at once. */
  payload: z.ZodType<Payload>;
  /** How many jobs of this kind run at once in this vault process (default 1). */
  concurrency?: number;
  /**
   * At least this long between two claims of this kind (default 0): the
   * notifications of jobs enqueued one by one meanwhile make one claim, not
   * one each. For a kind enqueued as fast as requests come, whose jobs can
   * wait that long.
   */
  claimGapMs?: number;
  /**
   * With `claimGapMs`: claim after that gap only once `size` jobs were
   * notified since the last claim (a group worth a statement), otherwise
   * wait longer, up to `maxGapMs`. At a low enqueue rate a claim every
   * `claimGapMs` takes one or two jobs and every statement after it pays
   * its fixed cost for them; at a high one the group fills within the short
   * gap and nothing waits longer than before.
   */
  claimGroup?: { size: number; maxGapMs: number };
  /**
   * Woken only by the notifications of jobs this vault process enqueued
   * (PostgreSQL, several processes on one database: every process hears
   * every job's notification). For a kind enqueued as fast as requests come
   * and claimed in groups (`claimGroup`): when every process is woken by
   * every job, each claims the same jobs at once — one takes them, the
   * others' claims find nothing or a few, and each group is split between
   * the processes. With this the process that enqueued a job claims it (the
   * requests, and so the jobs, are spread over the processes already); the
   * others' polls (`pollMs`) still claim whatever is due, so a job whose
   * process died before claiming it waits a poll at most. A notification
   * that names no vault process (PGlite; a job enqueued from outside the
   * vault) wakes every runner as before.
   */
  ownNotifications?: boolean;
  /**
   * Awaited before each claim of this kind (after `claimGapMs`): e.g. until
   * the process's API requests in flight are answered, for background work
   * that must not take the database (PGlite's one thread) or the cores from
   * them.
   */
  beforeClaim?: () => Promise<void>;
  /** Milliseconds before the next claim after claim `attempt` failed (default `defaultBackoff`). */
  backoff?: (attempt: number) => number;
  run(job: Job<Payload>): Promise<void>;
  /**
   * Settles what a job of this kind leaves behind when it dies because its
   * last claim's lease ran out (its process died or stalled during the last
   * attempt), so `run` never said how it ended. Runs as a job of its own
   * (`jobs.expired`, enqueued in the statement that makes the job dead, so
   * at least once): `job` is that follow-up, carrying the dead job's
   * payload; complete it in the transaction that settles.
   */
  expired?(job: Job<Payload>): Promise<void>;
  /**
   * Work of this kind that a vault process began in memory, without a job
   * (e.g. a background network token, provisioned by the process that made
   * it), and that is still not done `staleMs` (a job lease) after it began:
   * that process died or stalled. Run at every sweep, on any vault process,
   * it enqueues a job for each (in the statement that marks it taken, so a
   * second sweep does not) and answers how many.
   */
  adopt?(db: Db, staleMs: number): Promise<number>;
}

/** Thrown by a handler: retry after `afterMs` (e.g. an endpoint's `Retry-After`) rather than after the kind's backoff. */
export class RetryJobLater extends Error {
  readonly code = 'retry_job_later';
  readonly afterMs: number;

  constructor(message: string, options: { afterMs: number; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'RetryJobLater';
    this.afterMs = options.afterMs;
  }
}

/** Thrown by a handler: this job cannot succeed, whatever attempts it has left; it is dead now. */
export class AbandonJob extends Error {
  readonly code = 'abandon_job';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'AbandonJob';
  }
}

/** `job.complete(tx)` found that this process no longer holds the job's claim. */
export class JobClaimLost extends Error {
  readonly code = 'job_claim_lost';

  constructor(jobId: string) {
    super(`job ${jobId}: the claim was lost (its lease ran out), so this run's work must not commit`);
    this.name = 'JobClaimLost';
  }
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 3_600_000;

/**
 * Exponential with jitter: 1 s after the first failure, doubling up to an
 * hour, each delay drawn between half and all of that, so jobs that failed
 * together (an endpoint down) do not all come back in the same instant.
 */
export function defaultBackoff(attempt: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** The stored error: name and message, card-number-like digits masked, bounded. */
function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : `thrown: ${String(error)}`;
  return maskNumbers(text).slice(0, 1000);
}

const KIND = /^[a-z][a-z0-9_.-]{0,63}$/;

const ExpiredPayload = z.object({ kind: z.string(), job: z.string(), payload: z.unknown() });
type ExpiredPayload = z.infer<typeof ExpiredPayload>;

/**
 * Whether a kind with work waiting claims now: when nothing of it runs, or a
 * quarter of its slots are free. A busy kind claims in batches rather than
 * one job each time one finishes, so a backlog costs a claim per few jobs,
 * not per job; its slots refill before they all run dry.
 */
function claimsNow(kind: Pick<Kind, 'running' | 'concurrency'>): boolean {
  return kind.running === 0 || kind.concurrency - kind.running >= Math.ceil(kind.concurrency / 4);
}

export interface JobRunnerOptions {
  db: Db;
  log: Logger;
  /** The safety-net poll (and sweep) interval; wake-ups come by notification first. */
  pollMs: number;
  /** How long a claim holds without renewal; renewed every third of it while the handler runs. */
  leaseMs: number;
  /** How long done jobs are kept before they are deleted (default 10 minutes). */
  retentionMs?: number;
  /** On stop, how long in-flight jobs may finish before their signals are aborted (default 5 s). */
  stopGraceMs?: number;
}

interface Kind {
  handler: JobHandler<unknown>;
  concurrency: number;
  running: number;
  /** There may be due jobs the last claim did not see (a notification, a poll, a full claim). */
  dirty: boolean;
  claiming: Promise<void> | undefined;
  /** When the last claim began (performance.now()). */
  claimedAt: number;
  /** Notifications of due jobs since the last claim began (a guess at how many wait). */
  notified: number;
}

interface InFlight {
  id: string;
  kind: string;
  controller: AbortController;
  /** Its completion is under way: the claim going away is no loss, and renewing it is no longer needed. */
  finishing: boolean;
  done: Promise<void>;
}

/**
 * Runs the jobs of the kinds registered on it, in this vault process. One
 * per vault (see server/vault.ts); several processes on one PostgreSQL each
 * run one, and a job is run by one of them per claim. A kind's jobs are
 * claimed when a notification says one became due, on every poll, and
 * whenever a claim came back full, up to the kind's concurrency.
 */
export class JobRunner {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #options: Required<Omit<JobRunnerOptions, 'db' | 'log'>>;
  /** Who holds a claim, for whoever reads the table: host, pid and this runner. */
  readonly owner = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  readonly #kinds = new Map<string, Kind>();
  readonly #inFlight = new Map<string, InFlight>();
  #claimed = 0;
  #started = false;
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  /** Wake-ups for this runner's own retries that fall due before the next poll. */
  #retryWakes = new Set<NodeJS.Timeout>();
  #unlisten: (() => Promise<void>) | undefined;
  #sweeping: Promise<void> | undefined;
  #probing: Promise<void> | undefined;
  #renewing: Promise<void> | undefined;
  #pollHealthy = true;
  #settled: (() => void)[] = [];

  constructor(options: JobRunnerOptions) {
    this.#db = options.db;
    this.#log = options.log;
    this.#options = {
      pollMs: options.pollMs,
      leaseMs: options.leaseMs,
      retentionMs: options.retentionMs ?? 600_000,
      stopGraceMs: options.stopGraceMs ?? 5_000,
    };
    this.register({
      kind: EXPIRED_JOB,
      payload: ExpiredPayload,
      concurrency: 4,
      run: (job) => this.#runExpired(job),
    });
  }

  async #runExpired(job: Job<ExpiredPayload>): Promise<void> {
    const handler = this.#kinds.get(job.payload.kind)?.handler;
    if (handler?.expired === undefined) throw new AbandonJob(`no expired handler for ${job.payload.kind} in this process`);
    const parsed = handler.payload.safeParse(job.payload.payload);
    if (!parsed.success) throw new AbandonJob(`the dead job's payload does not fit the ${job.payload.kind} schema`);
    this.#log.warn({ job: job.payload.job, kind: job.payload.kind }, 'a job died in its last attempt (its lease ran out): settling what it left');
    await handler.expired({ ...job, payload: parsed.data });
  }

  /** Runs jobs of `handler.kind` from now on (before or after `start`). One handler per kind. */
  register<Payload>(handler: JobHandler<Payload>): void {
    if (!KIND.test(handler.kind)) throw new TypeError(`not a job kind: ${handler.kind}`);
    if (this.#kinds.has(handler.kind)) throw new TypeError(`a handler for ${handler.kind} is already registered`);
    const concurrency = handler.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`concurrency must be a positive integer: ${concurrency}`);
    this.#kinds.set(handler.kind, { handler: handler as JobHandler<unknown>, concurrency, running: 0, dirty: true, claiming: undefined, claimedAt: -Infinity, notified: 0 });
    if (this.#started) this.#wake(handler.kind);
  }

  /** Listens for due jobs, starts the poll, the sweeper and the lease renewal, and claims what is due. */
  async start(): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#unlisten = await this.#db.listen(JOBS_CHANNEL, (payload) => this.#notified(payload));
    const every = (ms: number, tick: () => void) => {
      const timer = setInterval(tick, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#options.pollMs, () => this.#poll());
    every(Math.max(10, Math.floor(this.#options.leaseMs / 3)), () => {
      this.#renewing ??= this.#renew().finally(() => (this.#renewing = undefined));
    });
    this.#poll(true);
  }

  /**
   * Stops claiming, then lets in-flight jobs finish for the stop grace; those
   * still running are told to stop (their signal), given the grace again,
   * and else left to their lease: once it runs out another process retries
   * them. Call before the storage closes.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    for (const timer of this.#retryWakes) clearTimeout(timer);
    await this.#unlisten?.().catch(() => undefined);
    await Promise.allSettled([...this.#kinds.values()].map((kind) => kind.claiming));
    await this.#probing;
    await this.#sweeping;
    await this.#renewing;
    const grace = () => new Promise((resolve) => setTimeout(resolve, this.#options.stopGraceMs).unref());
    const allDone = () => Promise.allSettled([...this.#inFlight.values()].map((job) => job.done));
    await Promise.race([allDone(), grace()]);
    this.#checkSettled();
    if (this.#inFlight.size === 0) return;
    for (const job of this.#inFlight.values()) job.controller.abort(new Error('the vault is stopping'));
    await Promise.race([allDone(), grace()]);
    if (this.#inFlight.size > 0) {
      this.#log.warn({ jobs: [...this.#inFlight.keys()] }, 'jobs still running at stop are left to their lease');
    }
  }

  /**
   * Resolves once this runner has nothing in flight and a claim of every
   * registered kind found nothing due. Jobs scheduled for later (a retry's
   * backoff) do not count, nor does anything before `start` or after
   * `stop`. For tests.
   */
  async whenIdle(): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      const claimedBefore = this.#claimed;
      for (const name of this.#kinds.keys()) this.#wake(name);
      await new Promise<void>((resolve) => {
        this.#settled.push(resolve);
        this.#checkSettled();
      });
      if (this.#claimed === claimedBefore) return;
    }
  }

  #checkSettled(): void {
    // Before start and after stop nothing is claimed, so what may be due does not keep a waiter waiting.
    const claiming = this.#started && !this.#stopped;
    for (const kind of this.#kinds.values()) {
      if (kind.claiming !== undefined || kind.running > 0 || (claiming && kind.dirty && claimsNow(kind))) return;
    }
    for (const resolve of this.#settled.splice(0)) resolve();
  }

  /** Claims what is due (at start every kind claims; later one probe says which kinds have due jobs) and sweeps. */
  #poll(everyKind = false): void {
    if (this.#stopped) return;
    const kinds = [...this.#kinds.keys()];
    const wake = (names: string[]) => names.forEach((name) => this.#wake(name));
    // Should the probe fail, every kind claims, and their claims report the trouble.
    if (everyKind) wake(kinds);
    else this.#probing ??= dueKinds(this.#db, kinds).then(wake, () => wake(kinds)).finally(() => (this.#probing = undefined));
    const expiredKinds = [...this.#kinds.values()].filter((kind) => kind.handler.expired !== undefined).map((kind) => kind.handler.kind);
    const adopting = [...this.#kinds.values()].flatMap((kind) => (kind.handler.adopt === undefined ? [] : [kind.handler]));
    this.#sweeping ??= sweepJobs(this.#db, { retentionMs: this.#options.retentionMs, expiredKinds })
      .then(async (swept) => {
        for (const handler of adopting) {
          const adopted = await handler.adopt!(this.#db, this.#options.leaseMs);
          if (adopted > 0) {
            this.#log.warn({ kind: handler.kind, adopted }, 'work begun in memory and not finished within a lease was given to jobs');
            swept.requeued.push(handler.kind);
          }
        }
        return swept;
      })
      .then(({ requeued, dead, deleted }) => {
        if (!this.#pollHealthy) this.#log.info('job sweep works again');
        this.#pollHealthy = true;
        if (requeued.length + dead > 0) this.#log.warn({ requeued, dead }, 'jobs whose lease expired were taken back');
        if (deleted > 0) this.#log.debug({ deleted }, 'done jobs deleted');
        for (const name of requeued) this.#wake(name);
      })
      .catch((error: unknown) => {
        if (this.#pollHealthy) this.#log.warn({ err: error }, 'job sweep failed; will retry');
        this.#pollHealthy = false;
      })
      .finally(() => (this.#sweeping = undefined));
  }

  /** A job notification: `kind`, or `kind origin` (the enqueuing connection's application_name; enqueue_job.sql). */
  #notified(payload: string): void {
    const space = payload.indexOf(' ');
    const name = space < 0 ? payload : payload.slice(0, space);
    const origin = space < 0 ? undefined : payload.slice(space + 1);
    const own = this.#db.origin;
    // Another vault process's job, of a kind whose jobs that process claims itself: left to it (and to the polls).
    if (this.#kinds.get(name)?.handler.ownNotifications === true && own !== undefined && origin !== own && origin?.startsWith(VAULT_ORIGIN_PREFIX)) return;
    this.#wake(name, true);
  }

  #wake(name: string, notified = false): void {
    const kind = this.#kinds.get(name);
    if (kind === undefined || this.#stopped || !this.#started) return;
    kind.dirty = true;
    if (notified) kind.notified++;
    kind.claiming ??= this.#claimFor(name, kind).finally(() => {
      kind.claiming = undefined;
      this.#checkSettled();
    });
  }

  async #claimFor(name: string, kind: Kind): Promise<void> {
    try {
      while (kind.dirty && !this.#stopped && claimsNow(kind)) {
        const minGap = kind.handler.claimGapMs ?? 0;
        const group = kind.handler.claimGroup;
        const gap = group === undefined || kind.notified >= group.size ? minGap : group.maxGapMs;
        const wait = kind.claimedAt + gap - performance.now();
        if (wait > 0) {
          // Looked at again every short gap: the group may fill before the long one is over.
          await new Promise((resolve) => setTimeout(resolve, minGap > 0 ? Math.min(wait, minGap) : wait).unref());
          continue;
        }
        await kind.handler.beforeClaim?.();
        kind.claimedAt = performance.now();
        kind.dirty = false;
        kind.notified = 0;
        const limit = kind.concurrency - kind.running;
        const jobs = await claimJobs(this.#db, { kind: name, limit, owner: this.owner, leaseMs: this.#options.leaseMs });
        this.#claimed += jobs.length;
        // A full claim may have left more behind.
        if (jobs.length === limit) {
          kind.dirty = true;
          kind.notified = Math.max(kind.notified, kind.handler.claimGroup?.size ?? 0);
        }
        for (const job of jobs) this.#run(kind, job);
      }
    } catch (error) {
      kind.dirty = true;
      this.#log.warn({ err: error, kind: name }, 'claiming jobs failed; the next poll retries');
      // The next poll claims again; until then, this kind must not look idle.
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.#options.pollMs, 1000)).unref());
    }
  }

  #run(kind: Kind, claimed: ClaimedJob): void {
    kind.running++;
    const entry: InFlight = { id: claimed.id, kind: claimed.kind, controller: new AbortController(), finishing: false, done: Promise.resolve() };
    this.#inFlight.set(claimed.claim, entry);
    entry.done = this.#execute(kind, claimed, entry).finally(() => {
      this.#inFlight.delete(claimed.claim);
      kind.running--;
      if (kind.dirty && claimsNow(kind)) this.#wake(claimed.kind);
      this.#checkSettled();
    });
  }

  async #execute(kind: Kind, claimed: ClaimedJob, entry: InFlight): Promise<void> {
    const context = { job: claimed.id, kind: claimed.kind, attempt: claimed.attempt };
    let completedInTx = false;
    try {
      const parsed = kind.handler.payload.safeParse(JSON.parse(claimed.payload));
      if (!parsed.success) {
        const where = parsed.error.issues.map((issue) => issue.path.join('.') || '(root)').join(', ');
        throw new AbandonJob(`the payload does not fit the ${claimed.kind} schema at ${where}`);
      }
      await kind.handler.run({
        id: claimed.id,
        kind: claimed.kind,
        key: claimed.key,
        payload: parsed.data,
        attempt: claimed.attempt,
        maxAttempts: claimed.maxAttempts,
        signal: entry.controller.signal,
        complete: async (tx) => {
          entry.finishing = true;
          if (!(await completeJob(tx, claimed))) throw new JobClaimLost(claimed.id);
          completedInTx = true;
        },
        completeIn: async (statement) => {
          entry.finishing = true;
          const result = await statement({ id: claimed.id, claim: claimed.claim });
          completedInTx = true;
          return result;
        },
      });
      if (completedInTx) return;
      entry.finishing = true;
      if (!(await completeJob(this.#db, claimed))) {
        this.#log.warn(context, 'a job finished after its claim was lost; its next claim runs it again');
      }
    } catch (error) {
      await this.#fail(kind, claimed, error, context);
    }
  }

  async #fail(kind: Kind, claimed: ClaimedJob, error: unknown, context: Record<string, unknown>): Promise<void> {
    const delayMs = error instanceof RetryJobLater ? error.afterMs : (kind.handler.backoff ?? defaultBackoff)(claimed.attempt);
    try {
      const state = await failJob(this.#db, claimed, { error: describe(error), delayMs: Math.max(0, delayMs), abandon: error instanceof AbandonJob });
      if (state === 'dead') this.#log.warn({ ...context, err: error }, 'job dead');
      else if (state === 'pending') {
        this.#log.info({ ...context, err: error, retry_in_ms: delayMs }, 'job failed; will retry');
        if (delayMs < this.#options.pollMs) this.#wakeLater(claimed.kind, delayMs);
      }
      else this.#log.info({ ...context, err: error }, 'a job failed after its claim was lost');
    } catch (failure) {
      // The lease runs out and the sweeper retries it.
      this.#log.warn({ ...context, err: failure }, 'recording a job failure failed; its lease will expire');
    }
  }

  #wakeLater(kind: string, delayMs: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#retryWakes.delete(timer);
      this.#wake(kind);
    }, Math.max(0, delayMs) + 5);
    timer.unref();
    this.#retryWakes.add(timer);
  }

  async #renew(): Promise<void> {
    const held = [...this.#inFlight.entries()].filter(([, job]) => !job.controller.signal.aborted && !job.finishing).map(([claim]) => claim);
    if (held.length === 0) return;
    try {
      const renewed = await renewLeases(this.#db, held, this.#options.leaseMs);
      for (const claim of held) {
        const job = this.#inFlight.get(claim);
        if (renewed.has(claim) || job === undefined || job.finishing) continue;
        this.#log.warn({ job: job.id, kind: job.kind }, 'a running job lost its claim (its lease ran out)');
        job.controller.abort(new JobClaimLost(job.id));
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'renewing job leases failed; will retry');
    }
  }
}
