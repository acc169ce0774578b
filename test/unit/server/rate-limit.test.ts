import { errorHeaders, statusOf } from '../../../server/http/error-response.ts';
import { describe, expect, it } from 'vitest';
import { VaultError } from '../../../server/errors.ts';
import { MemoryWindowCounters } from '../../../server/http/counters.ts';
import { RateLimiter } from '../../../server/http/rate-limit.ts';

/** A limiter counting in memory by a clock the test sets. */
class TestLimiter {
  now = 0;
  readonly limiter: RateLimiter;

  constructor(limit: number) {
    this.limiter = new RateLimiter(new MemoryWindowCounters({ namespace: 'test', windowMs: 60_000, alignment: 'clock' }, () => this.now), limit);
  }

  hit(key: string, now: number): Promise<void> {
    this.now = now;
    return this.limiter.hit(key);
  }
}

/** The error `hit` threw, or undefined when it let the request through. */
async function refusal(limiter: TestLimiter, key: string, now: number): Promise<VaultError | undefined> {
  try {
    await limiter.hit(key, now);
    return undefined;
  } catch (error) {
    if (error instanceof VaultError) return error;
    throw error;
  }
}

const MINUTE = 60_000;
/** 10:00:00 UTC on some day: the start of a window. */
const T0 = Date.UTC(2026, 10, 30, 10, 0, 0);

describe('the rate limiter', () => {
  it('lets the limit through in a window and refuses the next with 429 rate_limited', async () => {
    const limiter = new TestLimiter(3);
    for (const i of [0, 1, 2]) expect(await refusal(limiter, 'ip:a', T0 + i)).toBeUndefined();
    const refused = await refusal(limiter, 'ip:a', T0 + 3);
    expect(refused).toMatchObject({ code: 'rate_limited' });
    expect(statusOf(refused!)).toBe(429);
  });

  it.each([
    ['at its start', 0, '60'],
    ['half-way', 30_000, '30'],
    ['with 1.5 s left', 58_500, '2'],
    ['in its last millisecond', 59_999, '1'],
  ])('asks to retry when the window ends, in whole seconds, %s', async (_when, offset, retryAfter) => {
    const limiter = new TestLimiter(1);
    await limiter.hit('ip:a', T0 + offset);
    expect(errorHeaders((await refusal(limiter, 'ip:a', T0 + offset))!)).toEqual({ 'Retry-After': retryAfter });
  });

  it('counts in windows aligned to the minute, starting afresh in the next one', async () => {
    const limiter = new TestLimiter(1);
    // The first request half-way through a minute opens the window that minute, not one a minute long from then.
    await limiter.hit('ip:a', T0 + 30_000);
    expect(await refusal(limiter, 'ip:a', T0 + MINUTE - 1)).toBeInstanceOf(VaultError);
    expect(await refusal(limiter, 'ip:a', T0 + MINUTE)).toBeUndefined();
    expect(errorHeaders((await refusal(limiter, 'ip:a', T0 + MINUTE + 1))!)).toEqual({ 'Retry-After': '60' });
    // A gap of several windows.
    expect(await refusal(limiter, 'ip:a', T0 + 5 * MINUTE + 45_000)).toBeUndefined();
    expect(errorHeaders((await refusal(limiter, 'ip:a', T0 + 5 * MINUTE + 45_000))!)).toEqual({ 'Retry-After': '15' });
  });

  it('counts each key on its own, and keeps counting a refused key', async () => {
    const limiter = new TestLimiter(2);
    await limiter.hit('pk:a', T0);
    await limiter.hit('pk:a', T0);
    expect(await refusal(limiter, 'pk:a', T0)).toBeInstanceOf(VaultError);
    expect(await refusal(limiter, 'pk:b', T0)).toBeUndefined();
    expect(await refusal(limiter, 'pk:b', T0)).toBeUndefined();
    expect(await refusal(limiter, 'pk:a', T0 + 1_000)).toBeInstanceOf(VaultError);
    expect(await refusal(limiter, 'pk:b', T0 + 1_000)).toBeInstanceOf(VaultError);
  });
});
