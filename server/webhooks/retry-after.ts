/** A receiver cannot push a retry further out than a day; the retry schedule itself spans about 28 hours. */
export const RETRY_AFTER_MAX_SECONDS = 24 * 3600;

const HTTP_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * A `Retry-After` header (RFC 9110 §10.2.3) as whole seconds from `now`:
 * either delay-seconds (digits only) or an IMF-fixdate, which a date in the
 * past makes 0. Anything else — a fraction, a sign, an obsolete date format,
 * several values — is ignored (`undefined`), as the RFC lets a recipient do.
 * Capped at `RETRY_AFTER_MAX_SECONDS`.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,12}$/.test(text)) return Math.min(Number(text), RETRY_AFTER_MAX_SECONDS);
  if (!HTTP_DATE.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, Math.ceil((at - now) / 1000)), RETRY_AFTER_MAX_SECONDS);
}
