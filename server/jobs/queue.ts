import type { Queryable } from '../storage/db.ts';
import { callFunction, selectFunction } from '../storage/functions.ts';

/**
 * The job queue's statements: each state change of a job is one SQL
 * statement here (a new job: tessera_enqueue_job, which SQL triggers call
 * too), and nothing else in the vault writes the `jobs` table (migration
 * 011). The runner (runner.ts) holds no SQL.
 *
 *   pending ──claim──▶ running ──complete──▶ done ──retention──▶ (deleted)
 *      ▲                  │
 *      └──fail / lease────┤   (attempts < max_attempts)
 *                         └──fail / lease / abandon──▶ dead  (kept)
 *
 * Every change after the claim names the claim (a uuid the claim drew), so a
 * worker whose lease ran out, and whose job was claimed again since, changes
 * nothing: its late completion or failure matches no row. All times are the
 * database's, so vault nodes with skewed clocks agree on what is due.
 */

/** The notification channel: its payload is the kind of the job that became due. */
export const JOBS_CHANNEL = 'tessera_jobs';

export const DEFAULT_MAX_ATTEMPTS = 10;

/**
 * The follow-up of a job whose last claim's lease ran out, for kinds with an
 * `expired` handler: payload `{kind, job, payload}` (the dead job's kind, id
 * and payload).
 */
export const EXPIRED_JOB = 'jobs.expired';

export interface NewJob {
  /** The handler's name, e.g. `webhook.deliver`: lower case, digits, `.`, `_`, `-`. */
  kind: string;
  /** Stored as it is, in plaintext: never card data; name a token or a row instead. */
  payload?: Record<string, unknown>;
  /** A second enqueue of a kind and key whose job still exists is a no-op. */
  key?: string;
  /** Not claimed before this many milliseconds from now. */
  delayMs?: number;
  /** Claims before it is dead (default 10); a claim whose worker died counts. */
  maxAttempts?: number;
}

export interface ClaimedJob {
  id: string;
  kind: string;
  key: string | null;
  /** The payload's JSON text, parsed by the handler's schema. */
  payload: string;
  /** This claim's number: 1 for the first. */
  attempt: number;
  maxAttempts: number;
  /** Names this claim in every later change of the job. */
  claim: string;
}

const interval = (param: string) => `(${param}::double precision * interval '1 millisecond')`;

/**
 * Writes a job in the caller's transaction (`q`), so it commits or rolls
 * back with the change that causes it, and wakes the runners of every vault
 * process when it commits (`pg_notify` is delivered at commit, never on
 * rollback). Returns the job's id, or undefined when its key is taken.
 */
export async function enqueueJob(q: Queryable, job: NewJob): Promise<string | undefined> {
  const { rows } = await callFunction<string | null>(q, 'tessera_enqueue_job', {
    kind: job.kind,
    key: job.key ?? null,
    payload: JSON.stringify(job.payload ?? {}),
    delay_ms: job.delayMs ?? 0,
    max_attempts: job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
  });
  const id = rows[0]?.result;
  return id === null || id === undefined ? undefined : String(id);
}

/**
 * Claims up to `limit` due jobs of `kind`, oldest first, for `leaseMs`
 * (tessera_claim_jobs): several vault processes claim at once without
 * taking the same row, and the attempt is counted at the claim, so a worker
 * that dies mid-job has still used one.
 */
export async function claimJobs(q: Queryable, options: { kind: string; limit: number; owner: string; leaseMs: number }): Promise<ClaimedJob[]> {
  const { rows } = await selectFunction<{ id: string; kind: string; key: string | null; payload: string; attempts: number; max_attempts: number; claim: string }>(
    q,
    'tessera_claim_jobs',
    { kind: options.kind, limit: options.limit, owner: options.owner, lease_ms: options.leaseMs },
  );
  return rows.map((row) => ({
    id: row.id,
    kind: row.kind,
    key: row.key,
    payload: row.payload,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    claim: row.claim,
  }));
}

/**
 * Which of `kinds` have a pending job due now, in one statement (an index
 * probe per kind, `jobs_due`): the runner's safety-net poll claims only
 * those, rather than sending a claim for every kind each time — on PGlite
 * all of them queue on the one database thread in front of tokenizations.
 */
export async function dueKinds(q: Queryable, kinds: readonly string[]): Promise<string[]> {
  if (kinds.length === 0) return [];
  const { rows } = await q.query<{ kind: string }>(
    `select k.kind from unnest($1::text[]) as k(kind)
      where exists (select 1 from jobs j where j.state = 'pending' and j.kind = k.kind and j.run_at <= now())`,
    [kinds],
  );
  return rows.map((row) => row.kind);
}

/**
 * Marks a claimed job done (tessera_complete_job, which SQL functions that
 * settle a job's work in one statement call too). Run it in the transaction
 * that applies the job's effects and both commit together. False when the claim is gone (its lease
 * ran out and the sweeper took the job back): nothing changed.
 */
export async function completeJob(q: Queryable, job: Pick<ClaimedJob, 'id' | 'claim'>): Promise<boolean> {
  const { rows } = await callFunction<boolean>(q, 'tessera_complete_job', { id: job.id, claim: job.claim });
  return rows[0]?.result === true;
}

/**
 * Records a claimed job's failure: back to pending after `delayMs`, or dead
 * when it has used its attempts or `abandon` is set. Answers the new state,
 * or undefined when the claim is gone (nothing changed). `error` must hold no
 * card data; the runner masks it.
 */
export async function failJob(
  q: Queryable,
  job: Pick<ClaimedJob, 'id' | 'claim'>,
  failure: { error: string; delayMs: number; abandon: boolean },
): Promise<'pending' | 'dead' | undefined> {
  const { rows } = await q.query<{ state: 'pending' | 'dead' }>(
    `with failed as (
       select id, ($4::boolean or attempts >= max_attempts) as dead from jobs
        where id = $1 and claim = $2::uuid and state = 'running'
        for update)
     update jobs j
        set state = case when failed.dead then 'dead' else 'pending' end,
            run_at = case when failed.dead then j.run_at else now() + ${interval('$5')} end,
            finished_at = case when failed.dead then now() end,
            last_error = $3, claim = null, lease_expires_at = null, updated_at = now()
       from failed
      where j.id = failed.id
     returning j.state`,
    [job.id, job.claim, failure.error, failure.abandon, failure.delayMs],
  );
  return rows[0]?.state;
}

/** Extends the leases of claims still held; answers the claims that are (the others were lost). */
export async function renewLeases(q: Queryable, claims: readonly string[], leaseMs: number): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const { rows } = await q.query<{ claim: string }>(
    `update jobs set lease_expires_at = now() + ${interval('$2')}
      where state = 'running' and claim = any($1::uuid[])
     returning claim::text as claim`,
    [claims, leaseMs],
  );
  return new Set(rows.map((row) => row.claim));
}

/** At most this many rows per sweep statement, so one sweep never holds many locks for long. */
const SWEEP_BATCH = 500;

/**
 * Housekeeping, safe on every vault process at once: running jobs whose
 * lease ran out (their worker died or stalled) go back to pending, due now,
 * or dead when that was their last attempt; done jobs older than
 * `retentionMs` are deleted. Dead jobs stay for inspection. Answers the kinds
 * that have a job due again.
 */
export async function sweepJobs(
  q: Queryable,
  options: { retentionMs: number; expiredKinds?: readonly string[] },
): Promise<{ requeued: string[]; dead: number; deleted: number }> {
  // A job of `expiredKinds` that dies here gets its follow-up (EXPIRED_JOB) in the same statement: it cannot be lost.
  const { rows } = await q.query<{ kind: string; state: 'pending' | 'dead' }>(
    `with expired as (
       select id, attempts >= max_attempts as dead from jobs
        where state = 'running' and lease_expires_at < now()
        order by lease_expires_at
        limit ${SWEEP_BATCH}
        for update skip locked),
     swept as (
     update jobs j
        set state = case when expired.dead then 'dead' else 'pending' end,
            run_at = case when expired.dead then j.run_at else now() end,
            finished_at = case when expired.dead then now() end,
            last_error = 'the lease expired: its worker stopped or stalled',
            claim = null, lease_expires_at = null, updated_at = now()
       from expired
      where j.id = expired.id
     returning j.id, j.kind, j.state, j.payload)
     select kind, state,
            case when state = 'dead' and kind = any($1::text[])
                 then tessera_enqueue_job('${EXPIRED_JOB}', 'expired:' || id, jsonb_build_object('kind', kind, 'job', id::text, 'payload', payload),
                                          0, ${DEFAULT_MAX_ATTEMPTS})
            end as follow_up
       from swept`,
    [options.expiredKinds ?? []],
  );
  const { rowCount: deleted } = await q.query(
    `delete from jobs where id in (
       select id from jobs where state = 'done' and finished_at < now() - ${interval('$1')} limit ${SWEEP_BATCH})`,
    [options.retentionMs],
  );
  return {
    requeued: [...new Set(rows.filter((row) => row.state === 'pending').map((row) => row.kind))],
    dead: rows.filter((row) => row.state === 'dead').length,
    deleted,
  };
}
