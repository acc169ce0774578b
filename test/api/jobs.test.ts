import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AbandonJob, enqueueJob, JobClaimLost, JobRunner, RetryJobLater, type JobHandler, type JobRunnerOptions } from '../../server/jobs/index.ts';
import { claimJobs, completeJob, failJob, sweepJobs } from '../../server/jobs/queue.ts';
import { createLogger } from '../../server/log.ts';
import type { Db, Queryable } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { openPostgres } from '../../server/storage/postgres.ts';
import { newDataDir, newTestDatabase, startTestVault, storageKinds, type StorageKind, type TestVault } from '../support/vault.ts';

const silent = createLogger({ level: 'silent' });
const Numbered = z.object({ n: z.number().int() });
type Numbered = z.infer<typeof Numbered>;

interface JobRow {
  state: string;
  attempts: number;
  last_error: string | null;
  claimed_by: string | null;
}

async function jobRow(db: Queryable, id: string): Promise<JobRow | undefined> {
  const { rows } = await db.query<JobRow>('select state, attempts, last_error, claimed_by from jobs where id = $1', [id]);
  return rows[0];
}

/** Polls `probe` until it answers something other than undefined or false. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Adds one to the job's row in the transaction that completes it: a second application of a committed run shows as 2. */
async function applyOnce(db: Db, job: { id: string; complete(tx: Queryable): Promise<void> }): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      `insert into test_job_effects (job_id, applied) values ($1, 1)
       on conflict (job_id) do update set applied = test_job_effects.applied + 1`,
      [job.id],
    );
    await job.complete(tx);
  });
}

describe.each(storageKinds())('durable jobs on %s', (storage: StorageKind) => {
  /** One migrated database for the whole suite, with the tests' effects table, emptied after each test. */
  let db: Db;
  let databaseUrl: string | undefined;
  const stoppers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    db = await openStorage({ dataDir: await newDataDir(storage, 'jobs'), databaseUrl, log: silent });
    await db.exec('create table test_job_effects (job_id text primary key, applied integer not null)');
  });
  afterEach(async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop();
    await db.exec('truncate jobs, test_job_effects');
  });
  afterAll(() => db?.close());

  async function runner(db: Db, handlers: JobHandler<Numbered>[], options: Partial<JobRunnerOptions> = {}): Promise<JobRunner> {
    const jobs = new JobRunner({ db, log: silent, pollMs: 50, leaseMs: 5_000, ...options });
    for (const handler of handlers) jobs.register(handler);
    await jobs.start();
    stoppers.push(() => jobs.stop());
    return jobs;
  }

  function counting(kind: string, overrides: Partial<JobHandler<Numbered>> = {}) {
    const runs: { id: string; n: number; attempt: number; at: number }[] = [];
    const handler: JobHandler<Numbered> = {
      kind,
      payload: Numbered,
      async run(job) {
        runs.push({ id: job.id, n: job.payload.n, attempt: job.attempt, at: Date.now() });
      },
      ...overrides,
    };
    return { runs, handler };
  }

  it('never runs a job whose enqueueing transaction rolled back', async () => {
    const { runs, handler } = counting('test.rollback');
    const jobs = await runner(db, [handler]);
    await expect(
      db.transaction(async (tx) => {
        await enqueueJob(tx, { kind: 'test.rollback', payload: { n: 1 } });
        throw new Error('the change that caused it failed');
      }),
    ).rejects.toThrow('the change that caused it failed');
    await sleep(200);
    await jobs.whenIdle();
    expect(runs).toEqual([]);
    expect((await db.query('select * from jobs')).rows).toEqual([]);
  });

  it('runs a committed job once, and a second enqueue with the same key is a no-op', async () => {
    const { runs, handler } = counting('test.once');
    const jobs = await runner(db, [handler]);
    const id = await db.transaction((tx) => enqueueJob(tx, { kind: 'test.once', key: 'payment-1', payload: { n: 7 } }));
    expect(id).toMatch(/^\d+$/);
    expect(await enqueueJob(db, { kind: 'test.once', key: 'payment-1', payload: { n: 8 } })).toBeUndefined();
    await jobs.whenIdle();
    await sleep(200);
    await jobs.whenIdle();
    expect(runs.map(({ id, n, attempt }) => ({ id, n, attempt }))).toEqual([{ id, n: 7, attempt: 1 }]);
    expect(await jobRow(db, id!)).toMatchObject({ state: 'done', attempts: 1, last_error: null, claimed_by: jobs.owner });
  });

  it('retries a job whose handler throws after the kind’s backoff, until it succeeds', async () => {
    const { runs, handler } = counting('test.flaky', {
      backoff: (attempt) => attempt * 150,
      async run(job) {
        runs.push({ id: job.id, n: job.payload.n, attempt: job.attempt, at: Date.now() });
        if (job.attempt < 3) throw new Error(`attempt ${job.attempt} failed`);
      },
    });
    await runner(db, [handler], { pollMs: 60_000 });
    const id = (await enqueueJob(db, { kind: 'test.flaky', payload: { n: 1 } }))!;
    await waitFor('the job to be done', async () => (await jobRow(db, id))?.state === 'done');
    expect(runs.map((run) => run.attempt)).toEqual([1, 2, 3]);
    expect(runs[1]!.at - runs[0]!.at).toBeGreaterThanOrEqual(140);
    expect(runs[2]!.at - runs[1]!.at).toBeGreaterThanOrEqual(290);
    expect(await jobRow(db, id)).toMatchObject({ state: 'done', attempts: 3, last_error: 'Error: attempt 2 failed' });
  });

  it('makes a job dead after its last attempt fails, and keeps its error with card numbers masked', async () => {
    const { runs, handler } = counting('test.hopeless', {
      backoff: () => 10,
      async run(job) {
        runs.push({ id: job.id, n: job.payload.n, attempt: job.attempt, at: Date.now() });
        throw new Error('the acquirer refused 4242 4242 4242 4242');
      },
    });
    await runner(db, [handler]);
    const id = (await enqueueJob(db, { kind: 'test.hopeless', payload: { n: 1 }, maxAttempts: 3 }))!;
    await waitFor('the job to be dead', async () => (await jobRow(db, id))?.state === 'dead');
    await sleep(200);
    expect(runs.map((run) => run.attempt)).toEqual([1, 2, 3]);
    const row = (await jobRow(db, id))!;
    expect(row).toMatchObject({ state: 'dead', attempts: 3, last_error: 'Error: the acquirer refused [redacted-number]' });
    expect((await db.query<{ kept: string }>('select payload::text || coalesce(last_error, \'\') as kept from jobs')).rows[0]!.kept).not.toMatch(/4242/);
  });

  it('makes a job dead at once when its handler abandons it or its payload does not fit the kind', async () => {
    const { runs, handler } = counting('test.abandon', {
      async run(job) {
        runs.push({ id: job.id, n: job.payload.n, attempt: job.attempt, at: Date.now() });
        throw new AbandonJob('the endpoint is gone');
      },
    });
    const jobs = await runner(db, [handler]);
    const abandoned = (await enqueueJob(db, { kind: 'test.abandon', payload: { n: 1 } }))!;
    const misfit = (await enqueueJob(db, { kind: 'test.abandon', payload: { n: 'one' } }))!;
    await jobs.whenIdle();
    expect(runs.map((run) => run.id)).toEqual([abandoned]);
    expect(await jobRow(db, abandoned)).toMatchObject({ state: 'dead', attempts: 1, last_error: 'AbandonJob: the endpoint is gone' });
    expect(await jobRow(db, misfit)).toMatchObject({ state: 'dead', attempts: 1, last_error: 'AbandonJob: the payload does not fit the test.abandon schema at n' });
  });

  it('retries after the delay a handler asks for with RetryJobLater, instead of its backoff', async () => {
    const { runs, handler } = counting('test.later', {
      backoff: () => 60_000,
      async run(job) {
        runs.push({ id: job.id, n: job.payload.n, attempt: job.attempt, at: Date.now() });
        if (job.attempt === 1) throw new RetryJobLater('the endpoint said Retry-After: 0.3', { afterMs: 300 });
      },
    });
    await runner(db, [handler]);
    const id = (await enqueueJob(db, { kind: 'test.later', payload: { n: 1 } }))!;
    await waitFor('the job to be done', async () => (await jobRow(db, id))?.state === 'done');
    expect(runs.map((run) => run.attempt)).toEqual([1, 2]);
    expect(runs[1]!.at - runs[0]!.at).toBeGreaterThanOrEqual(290);
  });

  it('gives the job of a worker that died to another after the lease expires, counting the attempt, and refuses the dead worker’s late completion', async () => {
    const id = (await enqueueJob(db, { kind: 'test.orphan', payload: { n: 1 } }))!;
    // A worker claims the job and dies: nothing renews its lease.
    const [orphaned] = await claimJobs(db, { kind: 'test.orphan', limit: 10, owner: 'a-worker-that-died', leaseMs: 300 });
    expect(orphaned).toMatchObject({ id, attempt: 1 });
    expect(await jobRow(db, id)).toMatchObject({ state: 'running', claimed_by: 'a-worker-that-died' });

    const { runs, handler } = counting('test.orphan');
    const jobs = await runner(db, [handler]);
    await waitFor('the job to be done', async () => (await jobRow(db, id))?.state === 'done');
    expect(runs.map(({ id, attempt }) => ({ id, attempt }))).toEqual([{ id, attempt: 2 }]);
    expect(await jobRow(db, id)).toMatchObject({ state: 'done', attempts: 2, claimed_by: jobs.owner });

    expect(await completeJob(db, orphaned!)).toBe(false);
    expect(await failJob(db, orphaned!, { error: 'late', delayMs: 0, abandon: false })).toBeUndefined();
    expect(await jobRow(db, id)).toMatchObject({ state: 'done', attempts: 2, last_error: 'the lease expired: its worker stopped or stalled' });
  });

  it('makes a job dead when the lease of its last attempt expires', async () => {
    const id = (await enqueueJob(db, { kind: 'test.last-orphan', payload: { n: 1 }, maxAttempts: 1 }))!;
    await claimJobs(db, { kind: 'test.last-orphan', limit: 1, owner: 'a-worker-that-died', leaseMs: 100 });
    await sleep(150);
    expect(await sweepJobs(db, { retentionMs: 600_000 })).toEqual({ requeued: [], dead: 1, deleted: 0 });
    expect(await jobRow(db, id)).toMatchObject({ state: 'dead', attempts: 1 });
  });

  it('runs the kind’s expired handler once, as a job of its own with the dead job’s payload, when the lease of its last attempt expires', async () => {
    const id = (await enqueueJob(db, { kind: 'test.expiring', payload: { n: 7 }, maxAttempts: 1 }))!;
    // A worker claims the job's last attempt and dies: nothing renews its lease.
    await claimJobs(db, { kind: 'test.expiring', limit: 1, owner: 'a-worker-that-died', leaseMs: 100 });
    const settled: { n: number; kind: string }[] = [];
    const { runs, handler } = counting('test.expiring', {
      async expired(job) {
        settled.push({ n: job.payload.n, kind: job.kind });
        await applyOnce(db, job);
      },
    });
    const jobs = await runner(db, [handler]);
    const followUp = await waitFor('the follow-up to be done', async () => {
      const { rows } = await db.query<{ id: string; state: string }>(`select id::text as id, state from jobs where kind = 'jobs.expired' and key = $1`, [`expired:${id}`]);
      return rows[0]?.state === 'done' ? rows[0] : undefined;
    });
    await jobs.whenIdle();
    expect(runs).toEqual([]);
    expect(settled).toEqual([{ n: 7, kind: 'jobs.expired' }]);
    expect(await jobRow(db, id)).toMatchObject({ state: 'dead', attempts: 1 });
    const { rows } = await db.query('select job_id, applied from test_job_effects');
    expect(rows).toEqual([{ job_id: followUp.id, applied: 1 }]);
  });

  it('enqueues no follow-up for a kind without an expired handler', async () => {
    const id = (await enqueueJob(db, { kind: 'test.plain-expiring', payload: { n: 1 }, maxAttempts: 1 }))!;
    await claimJobs(db, { kind: 'test.plain-expiring', limit: 1, owner: 'a-worker-that-died', leaseMs: 100 });
    await sleep(150);
    expect(await sweepJobs(db, { retentionMs: 600_000, expiredKinds: ['test.other'] })).toEqual({ requeued: [], dead: 1, deleted: 0 });
    expect(await jobRow(db, id)).toMatchObject({ state: 'dead' });
    expect((await db.query(`select id from jobs where kind = 'jobs.expired'`)).rows).toEqual([]);
  });

  it('aborts a running job whose claim was taken away, and refuses its completion so its effects roll back', async () => {
    const outcome: unknown[] = [];
    const handler: JobHandler<Numbered> = {
      kind: 'test.stalled',
      payload: Numbered,
      async run(job) {
        await new Promise((resolve) => job.signal.addEventListener('abort', resolve, { once: true }));
        outcome.push(job.signal.reason);
        try {
          await applyOnce(db, job);
        } catch (error) {
          outcome.push(error);
          throw error;
        }
      },
    };
    await runner(db, [handler], { leaseMs: 300, pollMs: 60_000 });
    const id = (await enqueueJob(db, { kind: 'test.stalled', payload: { n: 1 } }))!;
    await waitFor('the job to run', async () => (await jobRow(db, id))?.state === 'running');
    // What another node's sweeper does once the lease has run out; held back an hour so nobody claims it again here.
    await db.query(`update jobs set state = 'pending', claim = null, lease_expires_at = null, run_at = now() + interval '1 hour' where id = $1`, [id]);
    await waitFor('the handler to give up', async () => outcome.length === 2);
    expect(outcome[0]).toBeInstanceOf(JobClaimLost);
    expect(outcome[1]).toBeInstanceOf(JobClaimLost);
    expect((await db.query('select * from test_job_effects')).rows).toEqual([]);
    expect(await jobRow(db, id)).toMatchObject({ state: 'pending', attempts: 1 });
  });

  it('handles each of 500 jobs exactly once with two runners on two connections racing for them', async () => {
    // PostgreSQL: a second pool, as a second vault process has. PGlite has one owner, so both runners share it.
    const other = databaseUrl === undefined ? db : await openPostgres(databaseUrl, silent);
    if (other !== db) stoppers.unshift(() => other.close());
    const handled = new Map<string, string[]>();
    const racer = (name: string, on: Db): JobHandler<Numbered> => ({
      kind: 'test.race',
      payload: Numbered,
      concurrency: 8,
      async run(job) {
        handled.set(job.id, [...(handled.get(job.id) ?? []), name]);
        await applyOnce(on, job);
      },
    });
    await runner(db, [racer('a', db)]);
    await runner(other, [racer('b', other)]);
    await db.transaction(async (tx) => {
      for (let n = 0; n < 500; n++) await enqueueJob(tx, { kind: 'test.race', payload: { n } });
    });
    await waitFor(
      'every job to be done',
      async () => (await db.query<{ n: number }>(`select count(*)::int as n from jobs where state = 'done'`)).rows[0]!.n === 500,
      60_000,
    );
    expect(handled.size).toBe(500);
    expect([...handled.values()].filter((names) => names.length !== 1)).toEqual([]);
    const by = (name: string) => [...handled.values()].filter(([first]) => first === name).length;
    expect(by('a')).toBeGreaterThan(0);
    expect(by('b')).toBeGreaterThan(0);
    const { rows } = await db.query<{ jobs: number; applied: number; attempts: number }>(
      `select count(*)::int as jobs, sum(e.applied)::int as applied, sum(j.attempts)::int as attempts
         from jobs j join test_job_effects e on e.job_id = j.id::text`,
    );
    expect(rows[0]).toEqual({ jobs: 500, applied: 500, attempts: 500 });
  });

  // PostgreSQL only (PGlite has one process and one connection), so not defined on PGlite rather than skipped there.
  if (storage === 'postgres') it('leaves a kind with ownNotifications to the process that enqueued it, and claims another process’s jobs on its poll', async () => {
    // Two pools, as two vault processes have; a third enqueues as a process that has no runner (it died).
    const other = await openPostgres(databaseUrl!, silent);
    const third = await openPostgres(databaseUrl!, silent);
    stoppers.unshift(() => other.close(), () => third.close());
    const ranBy = new Map<number, string>();
    const own = (name: string, beforeClaim?: () => Promise<void>): JobHandler<Numbered> => ({
      kind: 'test.own',
      payload: Numbered,
      concurrency: 8,
      ownNotifications: true,
      ...(beforeClaim === undefined ? {} : { beforeClaim }),
      run: async (job) => void ranBy.set(job.payload.n, name),
    });
    // b is slow to claim: were a woken by b's notifications too, a would take b's jobs first.
    const a = await runner(db, [own('a')], { pollMs: 60_000 });
    const b = await runner(other, [own('b', () => sleep(300))], { pollMs: 60_000 });
    await a.whenIdle();
    await b.whenIdle();
    await other.transaction(async (tx) => {
      for (const n of [1, 2, 3]) await enqueueJob(tx, { kind: 'test.own', payload: { n } });
    });
    await waitFor('b’s three jobs to run', async () => ranBy.size === 3);
    await db.transaction(async (tx) => {
      for (const n of [4, 5]) await enqueueJob(tx, { kind: 'test.own', payload: { n } });
    });
    await waitFor('a’s two jobs to run', async () => ranBy.size === 5);
    expect(Object.fromEntries(ranBy)).toEqual({ 1: 'b', 2: 'b', 3: 'b', 4: 'a', 5: 'a' });

    // A job whose process never claims it (no runner there) is claimed by another's poll.
    await runner(db, [{ kind: 'test.orphan', payload: Numbered, ownNotifications: true, run: async (job) => void ranBy.set(job.payload.n, 'poll') }], { pollMs: 200 });
    await enqueueJob(third, { kind: 'test.orphan', payload: { n: 6 } });
    await waitFor('the orphan job to run', async () => ranBy.get(6));
    expect(ranBy.get(6)).toBe('poll');
  });

  it('wakes an idle runner within a second of the commit, by notification rather than the poll', async () => {
    let ran: number | undefined;
    const jobs = await runner(db, [{ kind: 'test.wake', payload: Numbered, run: async () => void (ran = performance.now()) }], { pollMs: 60_000 });
    await jobs.whenIdle();
    await sleep(300);
    const at = performance.now();
    await db.transaction((tx) => enqueueJob(tx, { kind: 'test.wake', payload: { n: 1 } }));
    const latency = (await waitFor('the job to run', async () => ran)) - at;
    expect(latency).toBeLessThan(1000);
  });

  it('claims the jobs of a kind with a claim gap, enqueued one by one during the gap, in one claim after it', async () => {
    const started: { n: number; at: number }[] = [];
    const jobs = await runner(
      db,
      [{ kind: 'test.gap', payload: Numbered, concurrency: 8, claimGapMs: 1500, run: async (job) => void started.push({ n: job.payload.n, at: performance.now() }) }],
      { pollMs: 60_000 },
    );
    await enqueueJob(db, { kind: 'test.gap', payload: { n: 1 } });
    await waitFor('the first job to run', async () => started.length === 1);
    let lastEnqueued = 0;
    for (const n of [2, 3, 4]) {
      await sleep(100);
      lastEnqueued = performance.now();
      await enqueueJob(db, { kind: 'test.gap', payload: { n } });
    }
    await waitFor('the other jobs to run', async () => started.length === 4);
    await jobs.whenIdle();
    const rest = started.slice(1);
    expect(rest.map((run) => run.n).sort()).toEqual([2, 3, 4]);
    // One claim starts its jobs in one turn of the event loop; a claim per notification would start them 100 ms apart,
    // the first before the last was enqueued.
    const ats = rest.map((run) => run.at);
    expect(Math.max(...ats) - Math.min(...ats)).toBeLessThan(50);
    expect(Math.min(...ats)).toBeGreaterThan(lastEnqueued);
  });

  it('claims nothing until the kind’s beforeClaim resolves, then runs the jobs enqueued meanwhile', async () => {
    const started: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let asked = 0;
    await runner(
      db,
      [
        {
          kind: 'test.before-claim',
          payload: Numbered,
          concurrency: 8,
          beforeClaim: async () => {
            asked++;
            await gate;
          },
          run: async (job) => void started.push(job.payload.n),
        },
      ],
      { pollMs: 60_000 },
    );
    for (const n of [1, 2, 3]) await enqueueJob(db, { kind: 'test.before-claim', payload: { n } });
    await waitFor('the runner to ask before claiming', async () => asked > 0);
    await sleep(100);
    expect(started).toEqual([]);
    open();
    await waitFor('the jobs to run', async () => started.length === 3);
    expect([...started].sort()).toEqual([1, 2, 3]);
  });

  it('claims on each poll only the kinds that have a job due, and so runs a job that fell due with no notification', async () => {
    // The real database, with the kind of every claim statement noted on the way.
    const claimed: string[] = [];
    const noting: Db = {
      ...db,
      query: (text, params) => {
        if (text.includes("set state = 'running'")) claimed.push(String(params?.[0]));
        return db.query(text, params);
      },
    };
    const { runs, handler } = counting('test.polled');
    const jobs = await runner(noting, [handler, counting('test.quiet').handler], { pollMs: 50 });
    await jobs.whenIdle();
    claimed.length = 0;
    // Its notification comes at commit, before it is due: only a poll can find it.
    const id = (await enqueueJob(db, { kind: 'test.polled', payload: { n: 1 }, delayMs: 300 }))!;
    await waitFor('the job to be done', async () => (await jobRow(db, id))?.state === 'done');
    await sleep(300);
    expect(runs.map((run) => run.id)).toEqual([id]);
    expect(claimed).not.toContain('test.quiet');
  });

  it('lets a running job finish when the runner stops, and claims nothing after', async () => {
    const { runs, handler } = counting('test.stop', {
      async run(job) {
        await sleep(300);
        runs.push({ id: job.id, n: job.payload.n, attempt: job.attempt, at: Date.now() });
      },
    });
    const jobs = await runner(db, [handler]);
    const first = (await enqueueJob(db, { kind: 'test.stop', payload: { n: 1 } }))!;
    await waitFor('the job to run', async () => (await jobRow(db, first))?.state === 'running');
    await jobs.stop();
    expect(runs.map((run) => run.id)).toEqual([first]);
    expect(await jobRow(db, first)).toMatchObject({ state: 'done' });
    const second = (await enqueueJob(db, { kind: 'test.stop', payload: { n: 2 } }))!;
    await sleep(300);
    expect(await jobRow(db, second)).toMatchObject({ state: 'pending', attempts: 0 });
  });

  it('deletes done jobs past their retention and keeps dead ones', async () => {
    const done = (await enqueueJob(db, { kind: 'test.kept', payload: { n: 1 } }))!;
    const dead = (await enqueueJob(db, { kind: 'test.kept', payload: { n: 2 }, maxAttempts: 1 }))!;
    const claims = await claimJobs(db, { kind: 'test.kept', limit: 2, owner: 'test', leaseMs: 5_000 });
    expect(await completeJob(db, claims.find((c) => c.id === done)!)).toBe(true);
    expect(await failJob(db, claims.find((c) => c.id === dead)!, { error: 'Error: no', delayMs: 0, abandon: false })).toBe('dead');
    expect(await sweepJobs(db, { retentionMs: 60_000 })).toEqual({ requeued: [], dead: 0, deleted: 0 });
    await sleep(20);
    expect(await sweepJobs(db, { retentionMs: 10 })).toEqual({ requeued: [], dead: 0, deleted: 1 });
    expect(await jobRow(db, done)).toBeUndefined();
    expect(await jobRow(db, dead)).toMatchObject({ state: 'dead' });
  });

  it('does not claim a job before the delay it was enqueued with', async () => {
    const id = (await enqueueJob(db, { kind: 'test.delayed', payload: { n: 1 }, delayMs: 60_000 }))!;
    expect(await claimJobs(db, { kind: 'test.delayed', limit: 1, owner: 'test', leaseMs: 5_000 })).toEqual([]);
    await db.query(`update jobs set run_at = now() where id = $1`, [id]);
    expect(await claimJobs(db, { kind: 'test.delayed', limit: 1, owner: 'test', leaseMs: 5_000 })).toMatchObject([{ id, attempt: 1 }]);
  });
});

describe.each(storageKinds())('the vault’s job runner on %s', (storage) => {
  let vault: TestVault | undefined;
  afterEach(() => vault?.close());

  it('runs the jobs of a kind registered on an open vault, and stops with it', async () => {
    vault = await startTestVault({ storage, name: 'jobs-vault' });
    const { db, jobs } = vault.vault;
    const seen: number[] = [];
    jobs.register({ kind: 'test.vault', payload: Numbered, run: async (job) => void seen.push(job.payload.n) });
    await db.transaction((tx) => enqueueJob(tx, { kind: 'test.vault', payload: { n: 42 } }));
    await jobs.whenIdle();
    expect(seen).toEqual([42]);
    await vault.close();
    await expect(jobs.whenIdle()).resolves.toBeUndefined();
  });
});

describe.each(storageKinds().filter((kind) => kind === 'postgres'))('job notifications on %s', () => {
  const opened: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const resource of opened.splice(0).reverse()) await resource.close();
  });

  it('are heard again after the listening connection is killed', async () => {
    const databaseUrl = await newTestDatabase();
    const db = await openStorage({ dataDir: await newDataDir('postgres', 'jobs-listen'), databaseUrl, log: silent });
    opened.push(db);
    let ran: number | undefined;
    const jobs = new JobRunner({ db, log: silent, pollMs: 60_000, leaseMs: 5_000 });
    jobs.register({ kind: 'test.relisten', payload: Numbered, run: async () => void (ran = performance.now()) });
    await jobs.start();
    opened.push({ close: () => jobs.stop() });

    const listeners = async () =>
      (
        await db.query<{ pid: number }>(
          `select pid from pg_stat_activity
            where datname = current_database() and application_name = 'tessera-vault-listen'
              and state = 'idle' and query = 'listen tessera_jobs'`,
        )
      ).rows.map((row) => row.pid);
    const [killed] = await listeners();
    expect(killed).toBeDefined();
    await db.query('select pg_terminate_backend($1)', [killed]);
    await waitFor('a new listening connection', async () => {
      const pids = await listeners();
      return pids.length === 1 && pids[0] !== killed;
    });

    const at = performance.now();
    await enqueueJob(db, { kind: 'test.relisten', payload: { n: 1 } });
    expect((await waitFor('the job to run', async () => ran)) - at).toBeLessThan(1000);
  });
});
