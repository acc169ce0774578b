import { describe, expect, it } from 'vitest';
import { parseRetryAfter, RETRY_AFTER_MAX_SECONDS } from '../../../server/webhooks/retry-after.ts';

const now = Date.parse('2026-05-04T12:00:00Z');

describe('Retry-After', () => {
  it.each([
    ['0', 0],
    ['120', 120],
    [' 30 ', 30],
    ['86400', 86400],
    ['86401', RETRY_AFTER_MAX_SECONDS],
    ['999999999999', RETRY_AFTER_MAX_SECONDS],
  ])('reads delay-seconds %j as %i', (value, seconds) => {
    expect(parseRetryAfter(value, now)).toBe(seconds);
  });

  it.each([
    ['Mon, 04 May 2026 12:02:00 GMT', 120],
    ['Mon, 04 May 2026 12:00:00 GMT', 0],
    ['Mon, 04 May 2026 12:00:00 GMT'.replace('12:00:00', '12:00:01'), 1],
    ['Mon, 04 May 2026 11:00:00 GMT', 0],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
    ['Tue, 05 May 2026 13:00:00 GMT', RETRY_AFTER_MAX_SECONDS],
  ])('reads the HTTP date %j as %i seconds from now', (value, seconds) => {
    expect(parseRetryAfter(value, now)).toBe(seconds);
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['a fraction', '1.5'],
    ['negative', '-10'],
    ['signed', '+10'],
    ['a number with a unit', '10s'],
    ['two values', '10, 20'],
    ['an obsolete RFC 850 date', 'Monday, 04-May-26 12:02:00 GMT'],
    ['an asctime date', 'Mon May  4 12:02:00 2026'],
    ['an ISO date', '2026-05-04T12:02:00Z'],
    ['a date in another zone', 'Mon, 04 May 2026 12:02:00 +0200'],
    ['text', 'soon'],
  ])('ignores a value that is %s', (_what, value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});
