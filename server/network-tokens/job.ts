import { z } from 'zod';
import { JobClaimLost, RetryJobLater, type JobHandler } from '../jobs/index.ts';
import { NETWORK_DELETE_JOB, PROVISION_JOB, type CompleteIn, type NetworkTokens } from './service.ts';

/**
 * `network_token.provision`: asks the network for one network token and
 * settles it with the job's completion in one transaction (shared with the
 * other settlements ready at that moment). Enqueued for async requests,
 * token batches' items and sync requests the network did not settle; a
 * background network token gets one only when the process that made it
 * could not finish it in memory, or died first (`adopt`; see
 * `NetworkTokens.provisionInBackground`). The request id sent to the network
 * is the network token's id, so a run repeated after a crash gets the token
 * the first run was given, never a second one. A token the network holds
 * pending (delayed) is asked about again when it says. The last attempt
 * never leaves the network token pending: whatever went wrong, it is settled
 * `declined` — by the run itself, or, when its process died during the last
 * attempt, by the `jobs.expired` follow-up the sweep enqueues.
 */
export function provisionJob(
  tokens: NetworkTokens,
  options: {
    backoff?: ((attempt: number) => number) | undefined;
    beforeClaim?: (() => Promise<void>) | undefined;
    /** At the network at once in this process (TESSERA_NETWORK_TOKEN_CONCURRENCY), as for the in-memory path. */
    concurrency: number;
  },
): JobHandler<{ network_token: string }> {
  return {
    kind: PROVISION_JOB,
    payload: z.object({ network_token: z.string() }),
    // Mostly waiting on the token service: many at once per process (TESSERA_NETWORK_TOKEN_CONCURRENCY, 256; server/config.ts).
    concurrency: options.concurrency,
    // Enqueued one by one (async requests, hand-offs; every background token until 2026-12-05): a claim every 50 ms takes
    // them a dozen at a time instead of one per token.
    claimGapMs: 50,
    // At low rates a claim every 50 ms takes one or two tokens, and the claim, row read and sandbox statements after it
    // cost PGlite's thread their fixed part for them: wait for 8 (or 250 ms) instead; a busy vault fills 8 within 50 ms.
    claimGroup: { size: 8, maxGapMs: 250 },
    // Several processes on one PostgreSQL each hear every token's notification and all claimed the same groups at once
    // (a fifth of the claims found nothing, and the groups were split): the process that made the token claims it.
    ownNotifications: true,
    ...(options.backoff === undefined ? {} : { backoff: options.backoff }),
    ...(options.beforeClaim === undefined ? {} : { beforeClaim: options.beforeClaim }),
    async run(job) {
      const complete: CompleteIn = (settle) => job.completeIn(settle);
      try {
        const outcome = await tokens.provision(job.payload.network_token, { signal: job.signal, complete });
        if (!outcome.settled) throw new RetryJobLater('the network holds the token pending', { afterMs: outcome.retryAfterMs + 50 });
      } catch (error) {
        if (job.attempt < job.maxAttempts || error instanceof JobClaimLost) throw error;
        await tokens.giveUp(job.payload.network_token, complete);
      }
    },
    // Background network tokens a process began in memory and did not finish within a lease (it died or stalled).
    adopt: (db, staleMs) => tokens.adopt(db, staleMs),
    // The process died (or stalled) during the last attempt: the network token must not stay pending forever.
    async expired(job) {
      await tokens.giveUp(job.payload.network_token, (settle) => job.completeIn(settle));
    },
  };
}

/**
 * `network_token.delete`: tells the network that the vault deleted a network
 * token (its vault token was deleted). Enqueued in the delete's transaction;
 * at least once, and a repeat finds the token gone at the network.
 */
export function networkDeleteJob(tokens: NetworkTokens): JobHandler<{ network_token: string }> {
  return {
    kind: NETWORK_DELETE_JOB,
    payload: z.object({ network_token: z.string() }),
    concurrency: 4,
    async run(job) {
      await tokens.deleteAtNetwork(job.payload.network_token);
    },
  };
}
