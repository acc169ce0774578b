/**
 * The coalescer under the webhook deliveries' reads and settlements: calls
 * made while one runs go together as the next, a lone call waits for
 * nothing, and one bad input in a group fails only its own caller.
 */
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../../server/lib/coalesce.ts';

/** A coalescer doubling numbers, which records each group it was given and refuses 13; `release` lets a held group finish. */
function doubler(options: { max: number; hold?: boolean }) {
  const groups: number[][] = [];
  const held: (() => void)[] = [];
  const coalescer = new Coalescer<number, number>(
    async (inputs) => {
      groups.push(inputs);
      if (options.hold) await new Promise<void>((resolve) => held.push(resolve));
      if (inputs.includes(13)) throw new Error('13 is refused');
      return inputs.map((n) => n * 2);
    },
    { max: options.max },
  );
  const release = async () => {
    while (held.length === 0) await new Promise((resolve) => setImmediate(resolve));
    held.shift()!();
  };
  return { coalescer, groups, release };
}

describe('Coalescer', () => {
  it('runs a lone call at once and answers its own value', async () => {
    const { coalescer, groups } = doubler({ max: 8 });
    expect(await coalescer.call(21)).toBe(42);
    expect(groups).toEqual([[21]]);
  });

  it('sends the calls of one tick as one group', async () => {
    const { coalescer, groups } = doubler({ max: 8 });
    expect(await Promise.all([1, 2, 3].map((n) => coalescer.call(n)))).toEqual([2, 4, 6]);
    expect(groups).toEqual([[1, 2, 3]]);
  });

  it('sends the calls made while a group runs together as the next group', async () => {
    const { coalescer, groups, release } = doubler({ max: 8, hold: true });
    const first = coalescer.call(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [2, 3, 4].map((n) => coalescer.call(n));
    await release();
    await release();
    expect(await first).toBe(2);
    expect(await Promise.all(later)).toEqual([4, 6, 8]);
    expect(groups).toEqual([[1], [2, 3, 4]]);
  });

  it('puts no more than max inputs in a group', async () => {
    const { coalescer, groups } = doubler({ max: 2 });
    expect(await Promise.all([1, 2, 3, 4, 5].map((n) => coalescer.call(n)))).toEqual([2, 4, 6, 8, 10]);
    expect(groups).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('fails only the caller of a bad input, the others of its group answered on their own', async () => {
    const { coalescer, groups } = doubler({ max: 8 });
    const results = await Promise.allSettled([12, 13, 14].map((n) => coalescer.call(n)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([24, '13 is refused', 28]);
    expect(groups).toEqual([[12, 13, 14], [12], [13], [14]]);
  });
});
