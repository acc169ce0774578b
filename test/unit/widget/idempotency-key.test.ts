import { describe, expect, it } from 'vitest';
import { containsCardNumber } from '../../../server/lib/card-number-scan.ts';
import { newIdempotencyKey } from '../../../widget/fields/idempotency-key.ts';

describe('the Idempotency-Key the card fields send with a tokenization', () => {
  it('is 32 letters, different every time, and never looks like a card number to the vault — which UUIDs sometimes do', () => {
    const keys = Array.from({ length: 20_000 }, newIdempotencyKey);
    expect(keys.every((key) => /^[a-z]{32}$/.test(key))).toBe(true);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.filter(containsCardNumber)).toEqual([]);
    // Why not UUIDs: about one in 6,000 is refused, so among 100,000 some are (all but certainly).
    expect(Array.from({ length: 100_000 }, () => crypto.randomUUID()).filter(containsCardNumber).length).toBeGreaterThan(0);
  });
});
