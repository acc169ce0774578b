/**
 * The load client of `bench:network-tokens`, in a process of its own, that
 * costs little CPU: requests formatted once before the load starts and
 * written to kept-alive sockets as bytes, answers read only as far as their
 * status line and length. Node's HTTP client (`http.request` through an
 * Agent) cost the machine about as much CPU a request as the vault's whole
 * tokenization, and ran on the vault's event loop besides; on two cores that
 * client, not the vault, set how busy the cores were. This is the same idea
 * as `bench:throughput`'s `wrk`, which cannot send on a schedule and time an
 * answer from when it was due.
 *
 * One job at a time over IPC (`serialization: 'advanced'`):
 * - `open`: request i is due `i / rate` ms after the start and is sent then,
 *   on an idle socket or a new one (at most `sockets` a target), whatever is
 *   still unanswered; beyond that it waits for a socket, and its latency still
 *   counts from when it was due (no coordinated omission);
 * - `closed`: `concurrency` sockets, each sending its next request as soon as
 *   the last is answered.
 * Answers every request at the end, times on the shared clock
 * (performance.timeOrigin + performance.now()), and the CPU this process
 * used from the first request to the last answer.
 */
import { connect, type Socket } from 'node:net';
import { paced } from './post.ts';

export interface LoadJob {
  targets: { host: string; port: number }[];
  path: string;
  secretKey: string;
  bodies: string[];
  mode: { kind: 'open'; rate: number; sockets: number } | { kind: 'closed'; concurrency: number };
  /** Shared clock: no request is sent (or due) after this. */
  until: number;
}

export interface LoadAnswer {
  /** Shared-clock times: when the request was due (closed loop: sent), when it went out; its latency from when it was due. */
  due: number;
  sent: number;
  ms: number;
  status: number;
  error?: string;
}

export interface LoadResult {
  answers: LoadAnswer[];
  /** This process's CPU, ms, from the first request to the last answer. */
  cpuMs: number;
}

/**
 * An idle connection is not used again once it has been idle this long less
 * than the server's keep-alive timeout (its `Keep-Alive: timeout=…`, 5 s
 * from the vault by default): the server closes a kept-alive connection
 * idle that long, and a request written as it closes fails ("connection
 * closed"; three in a fixed-rate window on 2026-12-04, on connections
 * opened in a burst and idle since). A new connection costs less than that
 * error.
 */
const IDLE_MARGIN_MS = 1_000;
const DEFAULT_KEEP_ALIVE_MS = 5_000;
/** An answer not complete this long after the load's end (the last request due) is an error. */
const ANSWER_TIMEOUT_MS = 30_000;
const HEADER_END = Buffer.from('\r\n\r\n');
const CHUNKED_END = Buffer.from('\r\n0\r\n\r\n');

const clock = () => performance.timeOrigin + performance.now();

/** One kept-alive connection: at most one request in flight, its answer's bytes gathered until complete. */
class Connection {
  readonly socket: Socket;
  /** performance.now() when its last answer came (or it opened). */
  idleSince = performance.now();
  /** Idle this long, it is closed rather than used: the server's keep-alive timeout less a margin. */
  reuseWithinMs = DEFAULT_KEEP_ALIVE_MS - IDLE_MARGIN_MS;
  #bytes: Buffer | undefined;
  #onAnswer: ((status: number, error?: string) => void) | undefined;
  #closed = false;
  readonly #onClose: (c: Connection) => void;

  constructor(host: string, port: number, onClose: (c: Connection) => void) {
    this.#onClose = onClose;
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.close();
      this.#finish(0, 'connection closed');
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Closes it (once): no longer counted open from now on. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    this.socket.destroy();
  }

  send(request: Buffer, onAnswer: (status: number, error?: string) => void): void {
    this.#onAnswer = onAnswer;
    this.#bytes = undefined;
    this.socket.write(request);
  }

  #finish(status: number, error?: string): void {
    const onAnswer = this.#onAnswer;
    this.#onAnswer = undefined;
    this.#bytes = undefined;
    this.idleSince = performance.now();
    onAnswer?.(status, error);
  }

  #read(chunk: Buffer): void {
    const bytes = (this.#bytes = this.#bytes === undefined ? chunk : Buffer.concat([this.#bytes, chunk]));
    const headerEnd = bytes.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = bytes.toString('latin1', 0, headerEnd);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let complete: boolean;
    if (length !== null) complete = bytes.length >= headerEnd + 4 + Number(length[1]);
    else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) complete = bytes.indexOf(CHUNKED_END, headerEnd) >= 0;
    else complete = false;
    if (!complete) return;
    const close = /\r\nconnection:\s*close/i.test(head);
    const keepAlive = /\r\nkeep-alive:\s*timeout=(\d+)/i.exec(head);
    if (keepAlive !== null) this.reuseWithinMs = Number(keepAlive[1]) * 1000 - IDLE_MARGIN_MS;
    this.#finish(status);
    if (close) this.socket.destroy();
  }
}

async function run(job: LoadJob): Promise<LoadResult> {
  const until = job.until - performance.timeOrigin;
  const requests = job.bodies.map((body, i) => {
    const { host, port } = job.targets[i % job.targets.length]!;
    const head =
      `POST ${job.path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAuthorization: Bearer ${job.secretKey}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    return Buffer.from(head + body);
  });
  /** Per target: idle connections (the last used on top: the least likely to have been closed by the server meanwhile), and how many are open. */
  const pools = job.targets.map(() => ({ idle: [] as Connection[], open: 0 }));
  const all = new Set<Connection>();
  const maxSockets = job.mode.kind === 'open' ? job.mode.sockets : job.mode.concurrency;
  /** Per target: requests due with no socket free, oldest first. */
  const queued = job.targets.map(() => [] as { i: number; done: () => void }[]);
  const answers: LoadAnswer[] = [];
  const cpu0 = process.cpuUsage();

  const connectionFor = (target: number): Connection | undefined => {
    const pool = pools[target]!;
    while (pool.idle.length > 0) {
      const c = pool.idle.pop()!;
      if (c.closed) continue;
      if (performance.now() - c.idleSince < c.reuseWithinMs) return c;
      c.close();
    }
    if (pool.open >= maxSockets) return undefined;
    pool.open++;
    const { host, port } = job.targets[target]!;
    const c = new Connection(host, port, () => {
      pool.open--;
      all.delete(c);
    });
    all.add(c);
    return c;
  };
  const start = (i: number, c: Connection, done: () => void) => {
    const answer = answers[i]!;
    answer.sent = clock();
    c.send(requests[i]!, (status, error) => {
      answer.ms = clock() - answer.due;
      answer.status = status;
      if (error !== undefined) answer.error = error;
      release(i % job.targets.length, c);
      done();
    });
  };
  /** A connection is free again (or closed): the requests waiting for one go first. */
  const release = (target: number, c: Connection) => {
    if (!c.closed) pools[target]!.idle.push(c);
    const waiting = queued[target]!;
    while (waiting.length > 0) {
      const free = connectionFor(target);
      if (free === undefined) break;
      const { i, done } = waiting.shift()!;
      start(i, free, done);
    }
  };
  /** Sends request i (due at `due`, shared clock) on a free connection, or queues it for one; settles when answered or failed. */
  const send = (i: number, due: number) =>
    new Promise<void>((done) => {
      answers[i] = { due, sent: 0, ms: 0, status: 0 };
      const target = i % job.targets.length;
      const c = queued[target]!.length > 0 ? undefined : connectionFor(target);
      if (c === undefined) queued[target]!.push({ i, done });
      else start(i, c, done);
    });
  // What is unanswered ANSWER_TIMEOUT_MS after the last request was due fails: a queued one here, one in flight as its connection closes.
  const giveUp = setTimeout(
    () => {
      for (const waiting of queued) {
        for (const { i, done } of waiting.splice(0)) {
          answers[i]!.ms = clock() - answers[i]!.due;
          answers[i]!.error = 'timed out waiting for a socket';
          done();
        }
      }
      for (const c of all) c.socket.destroy();
    },
    Math.max(0, until - performance.now()) + ANSWER_TIMEOUT_MS,
  );

  if (job.mode.kind === 'open') {
    const rate = job.mode.rate;
    await paced(rate, (begin) => Math.min(requests.length, Math.max(0, Math.floor(((until - begin) * rate) / 1000))), (i, due) => send(i, performance.timeOrigin + due));
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: job.mode.concurrency }, async () => {
        while (performance.now() < until && next < requests.length) await send(next++, clock());
      }),
    );
  }
  clearTimeout(giveUp);
  for (const c of all) c.socket.destroy();
  const { user, system } = process.cpuUsage(cpu0);
  return { answers, cpuMs: (user + system) / 1000 };
}

process.on('disconnect', () => process.exit(0));
process.on('message', (job: LoadJob) => {
  void run(job).then((result) => process.send!(result));
});
