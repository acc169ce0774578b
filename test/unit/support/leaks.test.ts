import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CARDS } from '../../support/cards.ts';
import { cardDataIn, scanLog, scanRawFile, scanTableDump } from '../../support/leaks.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-leak-scan-'));
const write = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

describe('the leak scanner', () => {
  it.each([
    ['a plain card number', `number ${CARDS.visa.number}`, 'card number 4242…'],
    ['a spaced card number', `typed ${CARDS.amex.spaced}!`, 'card number 3782…'],
    ['a CVC as a word', `{"cvc":"${CARDS.visa.cvc}"}`, `CVC ${CARDS.visa.cvc}`],
  ])('finds %s in text', (_name, text, expected) => {
    expect(cardDataIn(text)).toBe(expected);
  });

  it('does not mistake CVC digits inside ids or hashes for a CVC', () => {
    expect(cardDataIn(`tok_Ab${CARDS.visa.cvc}Cd req_9${CARDS.visa.cvc}0`)).toBeUndefined();
  });

  it("does not mistake a timestamp's fraction of a second for a CVC, but still finds a CVC next to a timestamp", () => {
    const at = `"created_at":"2026-11-30T10:15:16.${CARDS.visa.cvc}Z","used":"2026-11-30 10:15:16.${CARDS.mastercard.cvc}+00"`;
    expect(cardDataIn(at)).toBeUndefined();
    expect(cardDataIn(`${at},"cvc":"${CARDS.visa.cvc}"`)).toBe(`CVC ${CARDS.visa.cvc}`);
    const file = write('timestamps.bin', Buffer.concat([Buffer.from([0]), Buffer.from(`{"created_at":"2026-11-30T10:15:16.${CARDS.visa.cvc}+00:00"}`), Buffer.from([0])]));
    expect(scanRawFile(file)).toEqual([]);
    // A timestamp cut in two by a page header, as seen in a PGlite WAL file.
    const split = write(
      'split-timestamp.bin',
      Buffer.concat([Buffer.from('"created_at" : "2026-11-30T1'), Buffer.from([0x18, 0xd1, 5, 0]), Buffer.from(`2:10:05.${CARDS.mastercard.cvc}+00:00"}`), Buffer.from([0x97, 7])]),
    );
    expect(scanRawFile(split)).toEqual([]);
    const notATimestamp = write('cvc-after-a-page-header.bin', Buffer.concat([Buffer.from([0x18, 0xd1, 5, 0]), Buffer.from(`{"card": {"cvc" : "${CARDS.mastercard.cvc}"}}`), Buffer.from([0x97, 7])]));
    expect(scanRawFile(notATimestamp)).toHaveLength(1);
  });

  it('looks for a CVC in a bytea value only inside readable text, and for a card number anywhere', () => {
    const random = Uint8Array.from([0xd1, 0x0e, 0x21, ...Buffer.from(CARDS.visa.cvc), 0xb4, 0x23]);
    const readable = new Uint8Array(Buffer.from(`{"number":"x","cvc":"${CARDS.visa.cvc}"}`));
    const number = Uint8Array.from([0xd1, ...Buffer.from(CARDS.visa.number), 0xb4]);
    expect(scanTableDump('db', { table: 'tokens', values: [random] })).toEqual([]);
    expect(scanTableDump('db', { table: 'tokens', values: [readable, number] }).map((f) => f.what)).toEqual([`CVC ${CARDS.visa.cvc}`, 'card number 4242…']);
  });

  it('flags log lines with a card number, a JWE, a secret key, a webhook secret or a master key, and CVC strings but not numbers', () => {
    const log = write(
      'vault.log',
      [
        JSON.stringify({ msg: 'ok', ms: Number(CARDS.visa.cvc) }),
        JSON.stringify({ msg: `got ${CARDS.mastercard.number}` }),
        JSON.stringify({ msg: 'eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a.b.c.d' }),
        JSON.stringify({ key: 'sk_test_AAAAAAAAAAAAAAAAAAAAAAAA' }),
        JSON.stringify({ secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}` }),
        JSON.stringify({ note: 'master c2VjcmV0' }),
        JSON.stringify({ cvc: CARDS.amex.cvc }),
      ].join('\n'),
    );
    expect(scanLog(log, ['c2VjcmV0']).map((f) => f.what)).toEqual([
      'card number',
      'card number 5555…',
      'card JWE',
      'secret key, admin key or webhook secret',
      'secret key, admin key or webhook secret',
      'master key',
      `CVC ${CARDS.amex.cvc}`,
    ]);
  });

  it('finds a CVC inside readable text in a binary file but not among random bytes', () => {
    const binary = Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(CARDS.visa.cvc), Buffer.from([0, 3])]);
    expect(scanRawFile(write('random.bin', binary))).toEqual([]);
    const text = Buffer.concat([Buffer.from([0]), Buffer.from(`{"number":"x","cvc":"${CARDS.visa.cvc}"}`), Buffer.from([0])]);
    expect(scanRawFile(write('text.bin', text)).map((f) => f.what)).toEqual([`CVC ${CARDS.visa.cvc}`]);
  });

  it('finds a card number or a CVC in text in a binary column, but not CVC digits among a hash’s bytes', () => {
    // A SHA-256 from a real run whose bytes 16–18 happen to spell a test CVC between non-letters.
    const hash = Buffer.from('eb304c2221457b9d1f247e55ae05b31e353136ec9d95359ddee7650a93da4b0f', 'hex');
    expect(hash.toString('latin1')).toContain(CARDS.visa.cvc);
    expect(scanTableDump('db', { table: 'used_ciphertexts', values: [new Uint8Array(hash)] })).toEqual([]);
    const readable = new Uint8Array(Buffer.from(`{"number":"${CARDS.visa.number}","cvc":"${CARDS.visa.cvc}"}`));
    expect(scanTableDump('db', { table: 'cards', values: [readable] }).map((f) => f.what)).toEqual(['card number 4242…', `CVC ${CARDS.visa.cvc}`]);
    expect(scanTableDump('db', { table: 'notes', values: [`cvc ${CARDS.visa.cvc}`] }).map((f) => f.what)).toEqual([`CVC ${CARDS.visa.cvc}`]);
  });
});
