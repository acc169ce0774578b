/**
 * The coalescer under the webhook deliveries' reads and settlements and the network tokens' row reads and sandbox statements: calls
 * made while one runs go together as the next, a lone call waits for
 * nothing (but `before`), and one bad input in a group fails only its own caller.
 */
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../../server/lib/coalesce.ts';

/** A coalescer doubling numbers, which records each group it was given and refuses 13; `release` lets a held group finish. */
function doubler(options: { max: number; hold?: boolean; turn?: boolean }) {
  const groups: number[][] = [];
  const held: (() => void)[] = [];
  const coalescer = new Coalescer<number, number>(
    async (inputs) => {
      groups.push(inputs);
      if (options.hold) await new Promise<void>((resolve) => held.push(resolve));
      if (inputs.includes(13)) throw new Error('13 is refused');
      return inputs.map((n) => n * 2);
    },
    { max: options.max, turn: options.turn ?? false },
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

  it('with turn, gathers the calls of the whole event-loop turn, not just the tick', async () => {
    const { coalescer, groups } = doubler({ max: 8, turn: true });
    // Two callbacks of one turn's check phase: microtasks run between them, so each is a tick of its own.
    const calls = [1, 2].map((n) => new Promise<number>((resolve) => setImmediate(() => resolve(coalescer.call(n)))));
    expect(await Promise.all(calls)).toEqual([2, 4]);
    expect(groups).toEqual([[1, 2]]);
  });

  it('without turn, sends the calls of two ticks of one turn as two groups', async () => {
    const { coalescer, groups } = doubler({ max: 8 });
    const calls = [1, 2].map((n) => new Promise<number>((resolve) => setImmediate(() => resolve(coalescer.call(n)))));
    expect(await Promise.all(calls)).toEqual([2, 4]);
    expect(groups).toEqual([[1], [2]]);
  });

  it('waits for before ahead of each group, and sends the calls made meanwhile with it', async () => {
    const groups: number[][] = [];
    const gates: (() => void)[] = [];
    const coalescer = new Coalescer<number, number>(
      async (inputs) => {
        groups.push(inputs);
        return inputs.map((n) => n * 2);
      },
      { max: 8, before: () => new Promise<void>((resolve) => gates.push(resolve)) },
    );
    const first = coalescer.call(1);
    while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const meanwhile = coalescer.call(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(groups).toEqual([]);
    gates.shift()!();
    expect(await Promise.all([first, meanwhile])).toEqual([2, 4]);
    expect(groups).toEqual([[1, 2]]);
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
