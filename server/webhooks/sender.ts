import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { type CheckedAddress, type HostResolution, type Resolver, resolveWebhookHost, systemResolver } from './resolve.ts';
import { parseRetryAfter } from './retry-after.ts';
import { webhookHeaders } from './signature.ts';
import { checkWebhookUrl, type WebhookUrlCheck } from './url-policy.ts';

/** One webhook to send: an event, signed with every live secret of its endpoint. */
export interface WebhookMessage {
  /** The endpoint's stored URL; checked again against the policy before sending. */
  url: string;
  /** `webhook-id`: the event id, the same on every retry. */
  id: string;
  /** `webhook-timestamp` in Unix seconds; this attempt's time unless given (receivers refuse stale ones). */
  timestamp?: number;
  /** The event JSON, exactly as sent and signed. */
  body: string;
  /** The endpoint's live `whsec_…` secrets, newest first; one signature each. */
  secrets: readonly string[];
}

/**
 * Why an attempt did not get an answer, or why its answer is a retry.
 * Fixed names: no part of a response, an address or a URL is ever in them.
 */
export type DeliveryError =
  | 'url_not_allowed'
  | 'address_not_allowed'
  | 'dns_failure'
  | 'timeout'
  | 'connection_refused'
  | 'connection_reset'
  | 'connection_failed'
  | 'tls_failed'
  | 'invalid_response'
  | 'redirect_not_followed';

export interface DeliveryResult {
  /** `delivered`: a 2xx in time. `gone`: 410, disable the endpoint. `retry`: everything else. */
  outcome: 'delivered' | 'retry' | 'gone';
  /** The receiver's status code, when it answered. */
  status?: number;
  /** From the start of the attempt (DNS included) to the response's status line, or to the failure. */
  latencyMs: number;
  /** The receiver's `Retry-After`, in seconds from now, on a non-2xx answer (see `parseRetryAfter`). */
  retryAfterSeconds?: number;
  error?: DeliveryError;
}

export interface WebhookSenderOptions {
  /** `TESSERA_WEBHOOK_ALLOW_LOCAL`: see `WebhookUrlPolicy`. */
  allowLocal?: boolean;
  /** The whole attempt, DNS to the response's status line: 10 s, the contract's limit for "delivered". */
  timeoutMs?: number;
  resolver?: Resolver;
  /** Trusted CAs instead of Node's bundle; for tests, whose receivers have a certificate made at test time. */
  ca?: string | Buffer;
  /** Connections kept per endpoint (host, port, checked addresses); more deliveries wait for one. */
  maxSocketsPerEndpoint?: number;
  /** How long a host's checked addresses are reused before it is resolved and checked again. */
  resolutionTtlMs?: number;
  /** A keep-alive connection idle this long is closed; below common server keep-alive timeouts (Node's 5 s). */
  idleSocketMs?: number;
  /** Response body bytes read (and thrown away) so the connection can be reused; past it the connection is closed. */
  maxResponseBytes?: number;
}

const DEFAULTS = {
  timeoutMs: 10_000,
  maxSocketsPerEndpoint: 8,
  resolutionTtlMs: 30_000,
  idleSocketMs: 4_000,
  maxResponseBytes: 64 * 1024,
};
/** A failed resolution is remembered briefly, so a burst of events for a dead name is not a burst of lookups. */
const FAILED_RESOLUTION_TTL_MS = 5_000;
/** Bounds on what the sender remembers; past them the least recently used entry is forgotten. */
const MAX_HOSTS = 1024;
const MAX_AGENTS = 256;
const USER_AGENT = 'Tessera-Webhooks/1';

type CheckedUrl = Extract<WebhookUrlCheck, { ok: true }>;
interface CachedResolution {
  resolution: Promise<HostResolution>;
  expiresAt: number;
  settled: boolean;
}

/**
 * Sends webhooks, the outbound half of delivery. One per vault process:
 * it keeps a keep-alive connection pool per endpoint and a short cache of
 * checked DNS answers, so a busy endpoint is neither a TLS handshake nor a
 * DNS lookup per event.
 *
 * Against SSRF, every attempt: checks the URL (`checkWebhookUrl`); resolves
 * the host once (or takes the cached answer) and refuses it if any address
 * is not allowed (`resolveWebhookHost`); connects only to those checked
 * addresses — the connection pool for them resolves nothing, its `lookup`
 * answers the checked addresses whatever it is asked — while `Host` and the
 * TLS server name stay the URL's host; and follows no redirect.
 */
export class WebhookSender {
  readonly #options: Required<Omit<WebhookSenderOptions, 'ca'>> & { ca: string | Buffer | undefined };
  readonly #resolutions = new Map<string, CachedResolution>();
  readonly #agents = new Map<string, http.Agent>();

  constructor(options: WebhookSenderOptions = {}) {
    this.#options = {
      allowLocal: options.allowLocal ?? false,
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      resolver: options.resolver ?? systemResolver,
      ca: options.ca,
      maxSocketsPerEndpoint: options.maxSocketsPerEndpoint ?? DEFAULTS.maxSocketsPerEndpoint,
      resolutionTtlMs: options.resolutionTtlMs ?? DEFAULTS.resolutionTtlMs,
      idleSocketMs: options.idleSocketMs ?? DEFAULTS.idleSocketMs,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
    };
  }

  /**
   * One attempt. Never throws for anything the network or the receiver does;
   * a `TypeError` means the message itself is malformed (no secret, a bad
   * secret or id), which is the caller's bug.
   */
  async deliver(message: WebhookMessage): Promise<DeliveryResult> {
    const timestamp = message.timestamp ?? Math.floor(Date.now() / 1000);
    const signed = webhookHeaders({ id: message.id, timestamp, body: message.body }, message.secrets);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const deadline = new Deadline(this.#options.timeoutMs);
    try {
      const check = checkWebhookUrl(message.url, { allowLocal: this.#options.allowLocal });
      if (!check.ok) return { outcome: 'retry', latencyMs: elapsed(), error: 'url_not_allowed' };
      const lookup = this.#resolve(check);
      const resolution = await deadline.race(lookup.resolution);
      if (resolution === undefined) {
        this.#forgetUnsettled(check.host, lookup);
        return { outcome: 'retry', latencyMs: elapsed(), error: 'timeout' };
      }
      if (!resolution.ok) return { outcome: 'retry', latencyMs: elapsed(), error: resolution.error };
      const agent = this.#agent(check, resolution.addresses);
      const headers = {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(message.body)),
        'user-agent': USER_AGENT,
        ...signed,
      };
      return await this.#post(check, agent, headers, message.body, deadline, elapsed);
    } finally {
      deadline.clear();
    }
  }

  /** Closes every pooled connection and forgets every checked address. */
  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
    this.#resolutions.clear();
  }

  /**
   * The host's checked addresses; one lookup in flight per host, shared by
   * every delivery waiting for it — for at most one attempt's time, so a
   * lookup that never ends does not hold the host for good. A delivery
   * whose time runs out while the lookup is still pending forgets it at
   * once (`#forgetUnsettled`), so the next message asks again rather than
   * wait on the same lookup.
   */
  #resolve(check: CheckedUrl): CachedResolution {
    const key = check.host;
    const cached = this.#resolutions.get(key);
    if (cached !== undefined && cached.expiresAt > performance.now()) return touch(this.#resolutions, key, cached);
    const entry: CachedResolution = {
      resolution: resolveWebhookHost(check, this.#options.resolver),
      expiresAt: performance.now() + this.#options.timeoutMs,
      settled: false,
    };
    void entry.resolution.then((resolution) => {
      entry.settled = true;
      entry.expiresAt = performance.now() + (resolution.ok ? this.#options.resolutionTtlMs : Math.min(FAILED_RESOLUTION_TTL_MS, this.#options.resolutionTtlMs));
    });
    remember(this.#resolutions, key, entry, MAX_HOSTS);
    return entry;
  }

  /** Forgets the host's lookup if it is still this pending one (deliveries already waiting on it keep waiting). */
  #forgetUnsettled(host: string, entry: CachedResolution): void {
    if (!entry.settled && this.#resolutions.get(host) === entry) this.#resolutions.delete(host);
  }

  /**
   * The connection pool for one endpoint and the addresses checked for it.
   * A new answer for the host is a new pool, so a connection to an address
   * checked earlier is never reused for an address checked later, or the
   * other way round. A forgotten pool is not destroyed (deliveries may be
   * using it); its idle connections close after `idleSocketMs`.
   */
  #agent(check: CheckedUrl, addresses: readonly CheckedAddress[]): http.Agent {
    const key = `${check.url.protocol}//${check.url.host} ${addresses.map((a) => a.address).join(' ')}`;
    const known = this.#agents.get(key);
    if (known !== undefined) return touch(this.#agents, key, known);
    const options: https.AgentOptions = {
      keepAlive: true,
      maxSockets: this.#options.maxSocketsPerEndpoint,
      maxFreeSockets: this.#options.maxSocketsPerEndpoint,
      // Most recently used first, so connections a burst opened beyond the steady need go idle and close.
      scheduling: 'lifo',
      timeout: this.#options.idleSocketMs,
      lookup: pinnedLookup(addresses),
      ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
    };
    const agent = check.url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    remember(this.#agents, key, agent, MAX_AGENTS);
    return agent;
  }

  #post(check: CheckedUrl, agent: http.Agent, headers: Record<string, string>, body: string, deadline: Deadline, elapsed: () => number): Promise<DeliveryResult> {
    const transport = check.url.protocol === 'https:' ? https : http;
    const maxResponseBytes = this.#options.maxResponseBytes;
    return new Promise((resolve) => {
      const attempt = (isRetryOnFreshSocket: boolean) => {
        // Each attempt settles once: by its response, its error, or its close without either.
        let settled = false;
        const request = transport.request({
          method: 'POST',
          hostname: check.host,
          port: check.url.port === '' ? undefined : Number(check.url.port),
          path: `${check.url.pathname}${check.url.search}`,
          headers,
          agent,
          signal: deadline.signal,
        });
        request.on('response', (response) => {
          settled = true;
          const latencyMs = elapsed();
          const status = response.statusCode ?? 0;
          const result: DeliveryResult = { outcome: outcomeOf(status), status, latencyMs };
          if (result.outcome === 'retry') {
            const retryAfter = parseRetryAfter(response.headers['retry-after']);
            if (retryAfter !== undefined) result.retryAfterSeconds = retryAfter;
            if (status >= 300 && status < 400) result.error = 'redirect_not_followed';
          }
          void discardBody(response, maxResponseBytes).then(() => resolve(result));
        });
        request.on('error', (error: NodeJS.ErrnoException) => {
          if (settled) return;
          settled = true;
          // A kept-alive connection the receiver closed just as this request went out: once more on a new one.
          if (!isRetryOnFreshSocket && request.reusedSocket && isReset(error) && !deadline.expired) return attempt(true);
          resolve({ outcome: 'retry', latencyMs: elapsed(), error: deadline.expired ? 'timeout' : connectionError(error) });
        });
        // Node closes a request quietly on an answer it cannot hand on, such as 101 Switching Protocols.
        request.on('close', () => {
          if (settled) return;
          settled = true;
          resolve({ outcome: 'retry', latencyMs: elapsed(), error: deadline.expired ? 'timeout' : 'invalid_response' });
        });
        request.end(body);
      };
      attempt(false);
    });
  }
}

function outcomeOf(status: number): DeliveryResult['outcome'] {
  if (status >= 200 && status < 300) return 'delivered';
  return status === 410 ? 'gone' : 'retry';
}

/**
 * The connection pool's resolver: the checked addresses, whatever name it
 * is asked for, so no second lookup can answer something else (DNS
 * rebinding). With `all` (Node's happy eyeballs), every checked address.
 */
function pinnedLookup(addresses: readonly CheckedAddress[]): LookupFunction {
  const first = addresses[0]!;
  return (_hostname, options, callback) => {
    if (options.all) callback(null, addresses.map(({ address, family }) => ({ address, family })));
    else callback(null, first.address, first.family);
  };
}

/**
 * Reads a response to its end so its connection can serve the next
 * delivery, keeping none of it (a receiver's answer is never logged or
 * stored); one larger than `max` bytes closes the connection instead.
 */
function discardBody(response: http.IncomingMessage, max: number): Promise<void> {
  return new Promise((done) => {
    let received = 0;
    response.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > max) response.destroy();
    });
    response.on('error', () => done());
    response.on('end', done);
    response.on('close', done);
  });
}

const isReset = (error: NodeJS.ErrnoException) => error.code === 'ECONNRESET' || error.code === 'EPIPE';

function connectionError(error: NodeJS.ErrnoException): DeliveryError {
  const code = error.code ?? '';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (isReset(error)) return 'connection_reset';
  if (code.startsWith('HPE_')) return 'invalid_response';
  if (code === 'EPROTO' || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SIGNATURE|ISSUER/.test(code)) return 'tls_failed';
  return 'connection_failed';
}

/** The attempt's time limit: one timer, whose signal aborts the lookup wait and the request alike. */
class Deadline {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.#timer = setTimeout(() => this.#controller.abort(), ms);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get expired(): boolean {
    return this.#controller.signal.aborted;
  }

  /** `promise`'s value, or `undefined` once the time is up. */
  race<T>(promise: Promise<T>): Promise<T | undefined> {
    if (this.expired) return Promise.resolve(undefined);
    return Promise.race([promise, new Promise<undefined>((resolve) => this.signal.addEventListener('abort', () => resolve(undefined), { once: true }))]);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

function touch<V>(map: Map<string, V>, key: string, value: V): V {
  map.delete(key);
  map.set(key, value);
  return value;
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
