/**
 * BENCH_CLIENT=thread for `bench:network-tokens`: the fixed-rate load client
 * on a worker thread of its own, so its timers and its answers' callbacks do
 * not share the vault's event loop (the vault runs in the bench's process).
 * The same open loop as the bench's own: request i is due at i / rate
 * seconds and sent then, whatever is still unanswered, its latency counted
 * from when it was due. Answers every request at the end (times on the
 * shared clock, performance.timeOrigin + performance.now()).
 */
import { Agent } from 'node:http';
import { parentPort } from 'node:worker_threads';
import { paced, post } from './post.ts';

export interface ClientRequest {
  urls: string[];
  secretKey: string;
  rate: number;
  jwes: string[];
  durationMs: number;
  sockets: number;
}

export interface ClientAnswer {
  /** Shared-clock times: when the request was due, when it went out; its latency from when it was due. */
  due: number;
  sent: number;
  ms: number;
  status: number;
  error?: string;
}

const port = parentPort!;
const clock = () => performance.timeOrigin + performance.now();

port.on('message', async (job: ClientRequest) => {
  const agent = new Agent({ keepAlive: true, maxSockets: job.sockets });
  const urls = job.urls.map((u) => new URL(u));
  const answers: ClientAnswer[] = [];
  await paced(job.rate, () => Math.min(job.jwes.length, Math.floor((job.durationMs * job.rate) / 1000)), (i, scheduled) => {
    const answer: ClientAnswer = { due: performance.timeOrigin + scheduled, sent: clock(), ms: 0, status: 0 };
    answers.push(answer);
    return post(agent, urls[i % urls.length]!, job.secretKey, JSON.stringify({ card: job.jwes[i], reusable: true })).then(
      (status) => {
        answer.ms = performance.now() - scheduled;
        answer.status = status;
      },
      (error: unknown) => {
        answer.ms = performance.now() - scheduled;
        answer.error = error instanceof Error ? error.message : String(error);
      },
    );
  });
  agent.destroy();
  port.postMessage(answers);
});
