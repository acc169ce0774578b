/** Summaries of timings, shared by the benchmarks. */

/** The `p`th percentile of values sorted ascending: the value at index ⌊p% × n⌋ (the last for p = 100); NaN when there are none. */
export const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

export const sortedCopy = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

export const median = (values: readonly number[]): number => percentile(sortedCopy(values), 50);
