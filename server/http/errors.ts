import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { auditSource, type AuditEntry, type AuditLog } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { errorBody, errorHeaders, statusOf } from './error-response.ts';
import { apiCodeOf } from '../lib/free-text.ts';
import { StorageUnavailableError } from '../storage/db.ts';
import type { AuthFailureThrottle, FailureVerdict } from './auth-throttle.ts';

/** Seconds a client should wait before retrying while storage is down. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

const FALLBACK_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};

/**
 * Maps every error to the API's error body; unexpected ones are logged
 * (safely) and answered as 500. A failed operation a route named with
 * `auditing` goes into the audit log, and so does a failed authentication,
 * counted against its client's address (`AuthFailureThrottle`).
 */
export function errorHandler(audit: AuditLog, authFailures: AuthFailureThrottle) {
  return async (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const vaultError = toVaultError(error);
    if (statusOf(vaultError) >= 500) {
      req.log.error({ err: error, code: vaultError.code }, 'request failed');
    }
    const entry = await failedEntry(req, vaultError, authFailures);
    // Storage down: the entry cannot be written, and the failure is in the request log.
    if (entry !== undefined && vaultError.code !== 'unavailable') {
      await audit.record(entry).catch((auditError: unknown) => req.log.warn({ err: auditError }, 'audit entry not written'));
    }
    if (res.headersSent) return;
    // Errors raised before the API's headers are set (a malformed path, say) are as strict as the rest.
    if (!res.hasHeader('Content-Security-Policy')) res.set(FALLBACK_HEADERS);
    res.status(statusOf(vaultError)).set(errorHeaders(vaultError)).json(errorBody(vaultError));
  };
}

/**
 * A failed authentication goes to the operator's log (no merchant), never a
 * merchant's own: whoever sent it is not that merchant, and a publishable key
 * is public.
 */
async function failedEntry(req: Request, error: VaultError, authFailures: AuthFailureThrottle): Promise<AuditEntry | undefined> {
  if (error.code === 'unauthenticated' || error.code === 'secret_key_required') {
    // Storage lost since the key was looked up: the entry could not be written either.
    const verdict = await authFailures.failed(req).catch((): FailureVerdict => 'drop');
    if (verdict === 'drop') return undefined;
    return {
      merchantId: null,
      actor: req.actor ?? 'unknown',
      action: verdict === 'record' ? 'auth.failed' : 'auth.throttled',
      outcome: 'failed',
      code: error.code,
      ...auditSource(req),
    };
  }
  return req.audit === undefined ? undefined : { ...req.audit, outcome: 'failed', code: error.code };
}

export function toVaultError(error: unknown): VaultError {
  if (error instanceof VaultError) return error;
  if (error instanceof StorageUnavailableError) {
    return new VaultError('unavailable', { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS, cause: error });
  }
  return new VaultError('internal_error', { cause: error });
}

/**
 * Parses a request body (or query) with a zod schema, answering 400 with the
 * first offending parameter, or the code a check carries (a card number in
 * free text is 422 `card_number_not_allowed`, see `freeText`). Messages name
 * the parameter, never its value.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys.find(isPlainName);
    return failWith(
      'parameter_unknown',
      key === undefined ? 'The request contains a parameter that is not accepted here.' : `The parameter "${key}" is not accepted here.`,
      key,
    );
  }
  const param = issue.path.map(String).map((segment) => (isPlainName(segment) ? segment : '?')).join('.');
  const code = apiCodeOf(issue);
  if (code !== undefined) throw new VaultError(code, param ? { param } : {});
  return failWith('parameter_invalid', param ? `The parameter "${param}" is missing or invalid.` : 'The request body must be a JSON object.', param || undefined);
}

function failWith(code: 'parameter_invalid' | 'parameter_unknown', message: string, param: string | undefined): never {
  throw new VaultError(code, { message, ...(param === undefined ? {} : { param }) });
}

/**
 * Names in a path can come from the client (an unknown key could be a card
 * number); only short lowercase names and small array indexes are echoed.
 */
export const isPlainName = (name: string) => /^[a-z][a-z_]{0,39}$|^\d{1,4}$/.test(name);
