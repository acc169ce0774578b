import { z } from 'zod';
import { RetryJobLater, type JobHandler } from '../jobs/index.ts';
import { PROVISION_JOB, type NetworkTokens } from './service.ts';

/**
 * `network_token.provision`: asks the network for one network token and
 * settles it with the job's completion in one transaction. The request id
 * sent to the network is the network token's id, so a run repeated after a
 * crash gets the token the first run was given, never a second one. A token
 * the network holds pending (delayed) is asked about again when it says.
 */
export function provisionJob(tokens: NetworkTokens): JobHandler<{ network_token: string }> {
  return {
    kind: PROVISION_JOB,
    payload: z.object({ network_token: z.string() }),
    // Mostly waiting on the token service: many at once per process.
    concurrency: 16,
    async run(job) {
      const outcome = await tokens.provision(job.payload.network_token, { signal: job.signal, within: (tx) => job.complete(tx) });
      if (!outcome.settled) throw new RetryJobLater('the network holds the token pending', { afterMs: outcome.retryAfterMs + 50 });
    },
  };
}
