/**
 * Durable background work: jobs kept in the database (`jobs`, migration 010),
 * written in the transaction of the change that causes them, run by one vault
 * process per claim, retried with backoff, dead after their last attempt.
 * The same on PGlite and on PostgreSQL, with any number of vault processes
 * on one PostgreSQL.
 *
 * Enqueue — one statement, in the caller's transaction (the outbox):
 *
 *   await db.transaction(async (tx) => {
 *     await tx.query('update payments set status = ...', [...]);
 *     await enqueueJob(tx, { kind: 'webhook.deliver', key: deliveryId, payload: { delivery: deliveryId } });
 *   });
 *
 * Rolled back: no job. Committed: every vault process is woken (LISTEN/NOTIFY,
 * delivered at commit on both storages; a 1 s poll as a safety net). `key`
 * makes a second enqueue of the same work a no-op while the first job's row
 * exists (done rows are kept 10 minutes, dead ones until someone deletes them).
 * The payload is stored in plaintext: never card data, name a token or a row.
 *
 * Handle — register a kind on the vault's runner (`vault.jobs`):
 *
 *   vault.jobs.register({
 *     kind: 'webhook.deliver',
 *     payload: z.object({ delivery: z.string() }),
 *     concurrency: 8,
 *     backoff: (attempt) => SCHEDULE[attempt - 1] ?? 36_000_000,
 *     async run(job) { ... },
 *   });
 *
 * A kind enqueued once per request sets `claimGapMs` too: at most one claim
 * per that many milliseconds, the notifications in between merged.
 *
 * A handler that returns has its job completed; one that throws has it
 * retried after `backoff(job.attempt)` (default: exponential with jitter),
 * after `afterMs` for `RetryJobLater`, never for `AbandonJob`, and dead once
 * `maxAttempts` claims failed. Exactly-once effects in the database: apply
 * them in a transaction that also calls `job.complete(tx)`: both commit or
 * neither, and a run whose claim was lost (lease ran out, someone else took
 * the job) throws `JobClaimLost` there and rolls back. Effects outside the
 * database (an HTTP call) are at least once: key them by `job.id` (or the
 * job's own key) so the receiver can drop a repeat, and stop when
 * `job.signal` aborts.
 *
 * A worker that dies mid-job (kill -9, a lost node) leaves its claim to run
 * out (`TESSERA_JOB_LEASE_MS`, renewed while the handler runs); the sweeper
 * on any vault process then returns the job to pending, its attempt counted.
 * When that was its last attempt the job is dead, and a kind with an
 * `expired` handler gets it run as a follow-up job (`jobs.expired`) to
 * settle what the dead job left.
 */
export { enqueueJob, DEFAULT_MAX_ATTEMPTS, type NewJob } from './queue.ts';
export { AbandonJob, defaultBackoff, JobClaimLost, JobRunner, RetryJobLater, type Job, type JobHandler, type JobRunnerOptions } from './runner.ts';
