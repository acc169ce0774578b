import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { replayKey } from '../../../server/keys/card-ciphertext.ts';

/** A compact JWE's shape: five base64url segments (header, key, IV, ciphertext, tag) of these byte lengths. */
const jweOf = (...lengths: number[]) => lengths.map((n) => randomBytes(n).toString('base64url')).join('.');

/** The same segment bytes spelled differently: the unused low bits of the last character set. */
function respelled(segment: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const unusedBits = segment.length % 4 === 2 ? 4 : segment.length % 4 === 3 ? 2 : 0;
  const value = alphabet.indexOf(segment.at(-1)!) | ((1 << unusedBits) - 1);
  return segment.slice(0, -1) + alphabet[value];
}

describe('the replay key of a JWE', () => {
  it('is the SHA-256 of a canonical JWE string, so replay records written before it still match', () => {
    const jwe = jweOf(120, 40, 12, 61, 16);
    expect(replayKey(jwe)).toEqual(createHash('sha256').update(jwe).digest());
  });

  it('is the same for every spelling of the same bytes', () => {
    const jwe = jweOf(120, 40, 12, 61, 16);
    const segments = jwe.split('.');
    const tag = respelled(segments[4]!);
    expect(tag).not.toBe(segments[4]);
    const twin = [...segments.slice(0, 4), tag].join('.');
    expect(twin).not.toBe(jwe);
    expect(replayKey(twin)).toEqual(replayKey(jwe));
  });

  it('differs when any decoded byte differs', () => {
    const jwe = jweOf(120, 40, 12, 61, 16);
    const segments = jwe.split('.');
    const bytes = Buffer.from(segments[3]!, 'base64url');
    bytes[0] = bytes[0]! ^ 1;
    const other = [...segments.slice(0, 3), bytes.toString('base64url'), segments[4]].join('.');
    expect(replayKey(other)).not.toEqual(replayKey(jwe));
  });
});
