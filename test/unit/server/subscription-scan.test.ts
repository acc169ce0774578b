import { describe, expect, it } from 'vitest';
import { nextScan } from '../../../server/subscriptions/jobs.ts';

describe('the real-time subscription scan chain', () => {
  it('names the next interval when a scan runs inside its own', () => {
    expect(nextScan('scan:50', 10_050, 200)).toEqual({ key: 'scan:51', delayMs: 150 });
  });

  it('names the interval after its own when the database started it a few milliseconds early', () => {
    // scan:50 is due at 10,000 ms; its run_at can fall just before that.
    expect(nextScan('scan:50', 9_996, 200)).toEqual({ key: 'scan:51', delayMs: 204 });
  });

  it('skips the intervals a late scan missed instead of running them all', () => {
    expect(nextScan('scan:50', 10_900, 200)).toEqual({ key: 'scan:55', delayMs: 100 });
  });

  it('follows the clock for a job with no interval key', () => {
    expect(nextScan(null, 10_050, 200)).toEqual({ key: 'scan:51', delayMs: 150 });
  });
});
