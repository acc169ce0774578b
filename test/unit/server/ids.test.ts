import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base62, newId } from '../../../server/lib/ids.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The bytes' big-endian number in base 62, padded to the length only the byte count sets: the encoding ids have always had. */
function referenceBase62(bytes: Uint8Array): string {
  const length = Math.ceil((bytes.length * 8) / Math.log2(62));
  let n = bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  let out = '';
  for (let i = 0; i < length; i++) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out;
}

describe('base62', () => {
  it('writes random bytes of every length up to 40 as their number in base 62, as ever', () => {
    for (let length = 0; length <= 40; length++) {
      for (let i = 0; i < 50; i++) {
        const bytes = randomBytes(length);
        expect(base62(bytes), bytes.toString('hex')).toBe(referenceBase62(bytes));
      }
    }
  });

  it.each([
    ['all zeros', Buffer.alloc(16)],
    ['all ones', Buffer.alloc(16, 0xff)],
    ['one', Buffer.from('00000000000000000000000000000001', 'hex')],
    ['61 and 62', Buffer.from('3e3d', 'hex')],
    ['an odd length of ones', Buffer.alloc(7, 0xff)],
  ])('%s', (_name, bytes) => {
    expect(base62(bytes)).toBe(referenceBase62(bytes));
  });

  it('keeps a known id as it was (subscription charges derive theirs from a digest)', () => {
    expect(base62(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'))).toBe('000SYW7RiJxkEgOGusQGwp');
    expect(base62(Buffer.alloc(16))).toBe('0'.repeat(22));
  });

  it('makes ids of 22 base62 characters after the prefix', () => {
    expect(newId('tok')).toMatch(/^tok_[0-9A-Za-z]{22}$/);
  });
});
