import { describe, expect, it } from 'vitest';
import { pooledRandomBytes } from '../../../server/lib/random.ts';

describe('pooledRandomBytes', () => {
  it('hands out each byte once: a thousand 16-byte draws, across pool refills, are all different', () => {
    const drawn = Array.from({ length: 1000 }, () => pooledRandomBytes(16).toString('hex'));
    expect(new Set(drawn).size).toBe(1000);
    expect(drawn.every((hex) => hex.length === 32)).toBe(true);
  });

  it('gives each caller bytes of its own, so wiping a key leaves the next draw alone', () => {
    const key = pooledRandomBytes(32);
    const next = pooledRandomBytes(32);
    const before = Buffer.from(next);
    key.fill(0);
    expect(next).toEqual(before);
    expect(next.buffer).not.toBe(key.buffer);
  });

  it('serves sizes up to and past what it pools, and zero', () => {
    for (const size of [0, 1, 12, 64, 65, 4096, 5000]) expect(pooledRandomBytes(size)).toHaveLength(size);
    // 5000 random bytes all zero would be a broken source, not chance.
    expect(pooledRandomBytes(5000).some((byte) => byte !== 0)).toBe(true);
    expect(pooledRandomBytes(64).some((byte) => byte !== 0)).toBe(true);
  });

  it('refuses a size that is not a whole number of bytes', () => {
    for (const size of [-1, 1.5, Number.NaN]) expect(() => pooledRandomBytes(size)).toThrow(RangeError);
  });
});
