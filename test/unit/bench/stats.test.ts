import { describe, expect, it } from 'vitest';
import { median, percentile, sortedCopy } from '../../../bench/stats.ts';

describe('the benchmarks’ timing summaries', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

  it('takes a percentile at index ⌊p% × n⌋ of the sorted values, the last one for p = 100', () => {
    expect(percentile(hundred, 50)).toBe(51);
    expect(percentile(hundred, 95)).toBe(96);
    expect(percentile(hundred, 99)).toBe(100);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
  });

  it('answers NaN for no values', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(median([])).toBeNaN();
  });

  it('sorts a copy numerically for the median, leaving the values as they were', () => {
    const values = [10, 9, 100, 2];
    expect(sortedCopy(values)).toEqual([2, 9, 10, 100]);
    expect(median(values)).toBe(10);
    expect(values).toEqual([10, 9, 100, 2]);
  });
});
