/**
 * The fields' calls to the vault (same origin as the fields document). An
 * answer is an `Outcome`, shaped like the `result` message the merchant page
 * receives: the vault's own errors pass through, and anything that is not an
 * answer from the vault is a `network_error`.
 */
import { NETWORK_ERROR } from '../shared/errors.ts';
import type { TesseraErrorShape } from '../shared/messages.ts';

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: TesseraErrorShape };

/**
 * `resultHeader`: a header in which the vault repeats a successful answer's
 * body; when it is there, the answer is read from it and the body is left to
 * drain (TOKEN_RESULT_HEADER).
 */
export async function postToVault<T>(
  path: string,
  body: string,
  signal: AbortSignal,
  idempotencyKey?: string,
  resultHeader?: string,
): Promise<Outcome<T>> {
  try {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(idempotencyKey && { 'idempotency-key': idempotencyKey }) },
      body,
      signal,
    });
    const early = response.ok && resultHeader !== undefined ? response.headers.get(resultHeader) : null;
    if (early !== null) {
      void response.arrayBuffer().catch(() => undefined);
      return { ok: true, value: JSON.parse(early) };
    }
    const payload = await response.json();
    if (response.ok) return { ok: true, value: payload };
    const { code, type, message, param } = payload.error;
    if (typeof code === 'string') return { ok: false, error: { code, type, message, ...(param && { param }) } };
  } catch {
    // Unreachable, timed out, or not the vault's JSON: all mean the vault gave no answer.
  }
  return { ok: false, error: NETWORK_ERROR };
}
