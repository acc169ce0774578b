import { describe, expect, it } from 'vitest';
import { defaultBackoff } from '../../../server/jobs/index.ts';

describe('the default job backoff', () => {
  it.each([
    [1, 500, 1000],
    [2, 1000, 2000],
    [5, 8000, 16_000],
    [12, 1_024_000, 2_048_000],
    [13, 1_800_000, 3_600_000],
    [40, 1_800_000, 3_600_000],
  ])('waits between half and all of the doubled delay after attempt %i (%i to %i ms), capped at an hour', (attempt, low, high) => {
    const delays = Array.from({ length: 200 }, () => defaultBackoff(attempt));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(low);
    expect(Math.max(...delays)).toBeLessThanOrEqual(high);
    // Jitter: jobs that failed together do not all come back at once.
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});
