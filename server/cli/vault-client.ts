import { setTimeout as sleep } from 'node:timers/promises';

/**
 * What the CLI's batch commands (`tokens import`, `payments batch`) share:
 * calling the vault over HTTP, sending a batch until it is accepted once,
 * reading its paged results, and a progress bar on stderr.
 */

/** A problem that stops a command, with the message to print (never card data). */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** The vault did not answer (refused connection, timeout). */
export class Unanswered extends CommandError {}

/** The vault answered with an error. */
export class Refused extends CommandError {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly param: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface VaultTarget {
  vaultUrl: string;
  /** Absent for the public endpoints (`GET /v1/keys`). */
  secretKey: string | undefined;
}

export interface Sending {
  body: string;
  contentType: string;
  idempotencyKey?: string;
}

const SUBMIT_ATTEMPTS = 5;
const RESULTS_PAGE = 1000;

export async function callVault(target: VaultTarget, method: 'GET' | 'POST', path: string, send?: Sending): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${target.vaultUrl}${path}`, {
      method,
      headers: {
        ...(target.secretKey === undefined ? {} : { authorization: `Bearer ${target.secretKey}` }),
        ...(send === undefined ? {} : { 'content-type': send.contentType }),
        ...(send?.idempotencyKey === undefined ? {} : { 'idempotency-key': send.idempotencyKey }),
      },
      ...(send === undefined ? {} : { body: send.body }),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new Unanswered(`no answer from the vault at ${target.vaultUrl} (${(error as Error).name})`);
  }
  const json = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string; param?: string } };
  if (!response.ok) {
    const { code, message, param } = json.error ?? {};
    // A refused CSV's message names its line and column (`Line 4, column 3: …`), a refused item its param (`items.12.reference`).
    throw new Refused(response.status, code, param, `the vault answered ${response.status} ${code ?? ''}${param === undefined ? '' : ` (${param})`}: ${message ?? ''}`);
  }
  return json;
}

/**
 * Sends a batch with its Idempotency-Key, again on no answer, a 5xx or 409
 * `idempotency_in_flight`: one key for every try, so the vault accepts it
 * once whatever happened to an answer.
 */
export async function submitBatch(target: VaultTarget, path: string, send: Sending & { idempotencyKey: string }): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await callVault(target, 'POST', path, send);
    } catch (error) {
      const retryable = error instanceof Unanswered || (error instanceof Refused && (error.status >= 500 || error.code === 'idempotency_in_flight'));
      if (!retryable || attempt === SUBMIT_ATTEMPTS) throw error;
      await sleep(500 * 2 ** (attempt - 1));
    }
  }
}

/** Every result of a finished batch (`GET …/results`), page by page. */
export async function batchResults<T extends { index: number }>(target: VaultTarget, resultsPath: string): Promise<T[]> {
  const results: T[] = [];
  for (let after: number | undefined; ; ) {
    const query = `limit=${RESULTS_PAGE}${after === undefined ? '' : `&starting_after=${after}`}`;
    const page = (await callVault(target, 'GET', `${resultsPath}?${query}`)) as { data: T[]; has_more: boolean };
    results.push(...page.data);
    if (!page.has_more || page.data.length === 0) return results;
    after = page.data.at(-1)!.index;
  }
}

/** A progress bar on stderr; a line per tenth (and per change of label) when stderr is not a terminal. */
export class ProgressBar {
  readonly #total: number;
  readonly #unit: string;
  #lastTenth = -1;
  #lastLabel = '';

  constructor(total: number, unit: string) {
    this.#total = total;
    this.#unit = unit;
  }

  draw(done: number, label: string, final = false): void {
    const share = this.#total === 0 ? 1 : done / this.#total;
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round(share * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ${done}/${this.#total} ${this.#unit} ${label}   ${final ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor(share * 10);
    if (label !== this.#lastLabel) this.#lastTenth = -1;
    this.#lastLabel = label;
    if (tenth > this.#lastTenth || final) {
      this.#lastTenth = tenth;
      process.stderr.write(`${done}/${this.#total} ${this.#unit} ${label}\n`);
    }
  }
}
