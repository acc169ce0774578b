import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CARDS } from '../../support/cards.ts';
import { cardDataIn, cardDataInValue, scanLog, scanRawFile, scanTableDump, SECRET_CVCS } from '../../support/leaks.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-leak-scan-'));
const write = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const { cvc } = CARDS.visa;
const amexCvc = CARDS.amex.cvc;

/** Every way a millisecond or microsecond fraction is written: JavaScript's ISO form, PostgreSQL's, and one cut in two by a page header. */
function timestampsWithEveryFraction(): string[] {
  const out: string[] = [];
  for (let ms = 0; ms < 1000; ms++) {
    const fraction = String(ms).padStart(3, '0');
    out.push(`2026-11-30T10:15:16.${fraction}Z`, `2026-11-30 10:15:16.${fraction}+00`, `2:10:05.${fraction}+00:00`, `10:15:16.${fraction}4+00`);
  }
  return out;
}

describe('the leak scanner', () => {
  it.each([
    ['a plain card number', `number ${CARDS.visa.number}`, 'card number 4242…'],
    ['a card number typed with its brand’s spaces', `typed ${CARDS.amex.spaced}!`, 'card number 3782…'],
    ['a card number typed in fours', 'typed 4000 0000 0000 0002', 'card number 4000…'],
    ['a CVC in JSON', `{"number":"x","cvc":"${cvc}"}`, `CVC ${cvc}`],
    ['a CVC in JSON inside a JSON string', `{"body":"{\\"cvc\\": \\"${cvc}\\"}"}`, `CVC ${cvc}`],
    ['a CVC in a form body', `token=tok_1&cvc=${cvc}&amount=100`, `CVC ${cvc}`],
    ['a CVC URL-encoded in JSON', `%7B%22cvc%22%3A%22${cvc}%22%7D`, `CVC ${cvc}`],
    ['a CVC in a sentence', `Invalid CVC for visa: ${cvc}.`, `CVC ${cvc}`],
    ['a security code in a sentence', `security code ${amexCvc} does not match`, `CVC ${amexCvc}`],
    ['a CVC as a quoted value in JSON', `{"fields":["${cvc}"]}`, `CVC ${cvc}`],
    ['a CVC as the whole value', ` ${cvc} `, `CVC ${cvc}`],
  ])('finds %s in text', (_name, text, expected) => {
    expect(cardDataIn(text)).toBe(expected);
  });

  it.each([
    ['under a key that names a CVC', { card: { security_code: `code ${cvc}` } }],
    ['as a string in an array', { values: ['x', cvc] }],
    ['as a zod issue’s input', { issues: [{ path: ['card', 'x'], input: cvc }] }],
    ['inside JSON held in a string', { stored: JSON.stringify({ card: { cvv: cvc } }) }],
  ])('finds a CVC in a JSON value %s', (_name, value) => {
    expect(cardDataInValue(value)).toBe(`CVC ${cvc}`);
  });

  it('finds no CVC in timestamps, whatever their fraction of a second', () => {
    const timestamps = timestampsWithEveryFraction();
    for (const canary of SECRET_CVCS.filter((c) => c.length === 3)) expect(timestamps.some((t) => t.includes(`.${canary}`))).toBe(true);
    const log = timestamps.map((time) => JSON.stringify({ time, msg: 'request', ms: 79 })).join('\n');
    expect(scanLog(write('timestamps.log', log), [])).toEqual([]);
    expect(scanTableDump('db', { table: 'events', values: timestamps.map((at) => JSON.stringify({ at, cvc: '[redacted]' })) })).toEqual([]);
    expect(scanRawFile(write('timestamps.bin', Buffer.concat(timestamps.map((t) => Buffer.from(`\u0000"created_at" : "${t}"`)))))).toEqual([]);
  });

  it('finds no CVC in ids, UUIDs, hashes, base64url or numbers that hold its digits', () => {
    const values = [
      `tok_Ab${cvc}Cd`,
      `req_9${cvc}0`,
      `0f3e2a1b-${amexCvc}-4c1d-8e2f-${amexCvc}0a1b2c3d`,
      `eyJhbGciOi.x-${cvc}_y.abc`,
      `a3f9${cvc}e1`,
      `order-${cvc}1`,
      `1.${cvc}`,
      `v2.${cvc}.1`,
    ];
    for (const value of values) expect(cardDataIn(value), value).toBeUndefined();
    // A CVC beginning with 0 is never a JSON number: the digits as a number are a different value.
    expect(cardDataInValue({ height: Number(cvc), port: Number(amexCvc), cvc: '[redacted]' })).toBeUndefined();
    expect(cardDataInValue({ cvc: `eyJhbGciOi.x-${cvc}_y.abc` })).toBeUndefined();
  });

  it('finds no CVC among random bytes that hold its digits, in a raw file or a bytea column, and still finds one in readable text there', () => {
    const random = Buffer.concat([randomBytes(64), Buffer.from([0xd1, 0x0e, 0x21]), Buffer.from(cvc), Buffer.from([0xb4, 0x23]), randomBytes(64)]);
    expect(scanRawFile(write('random.bin', random))).toEqual([]);
    expect(scanTableDump('db', { table: 'used_ciphertexts', values: [new Uint8Array(random)] })).toEqual([]);
    const readable = Buffer.concat([random, Buffer.from(`{"number": "x", "cvc": "${cvc}"}`), random]);
    expect(scanRawFile(write('readable.bin', readable)).map((f) => f.what)).toEqual([`CVC ${cvc}`]);
    expect(scanTableDump('db', { table: 'cards', values: [new Uint8Array(readable)] }).map((f) => f.what)).toEqual([`CVC ${cvc}`]);
    const number = Uint8Array.from([0xd1, ...Buffer.from(CARDS.visa.number), 0xb4]);
    expect(scanTableDump('db', { table: 'cards', values: [number] }).map((f) => f.what)).toEqual(['card number 4242…']);
  });

  it('finds a CVC in a bytea column holding just the CVC', () => {
    expect(scanTableDump('db', { table: 'tokens', values: [new Uint8Array(Buffer.from(cvc))] }).map((f) => f.what)).toEqual([`CVC ${cvc}`]);
  });

  it('finds a CVC in a text column holding just the CVC, or JSON with one, but not in ordinary rows', () => {
    const ordinary = [randomUUID(), new Date().toISOString(), 'sk_test_…abcd', '{"amount":79,"currency":"EUR"}'];
    expect(scanTableDump('db', { table: 'payments', values: ordinary })).toEqual([]);
    expect(scanTableDump('db', { table: 'notes', values: [...ordinary, cvc] }).map((f) => f.what)).toEqual([`CVC ${cvc}`]);
    expect(scanTableDump('db', { table: 'audit', values: [JSON.stringify({ details: { card: { cvc } } })] }).map((f) => f.what)).toEqual([`CVC ${cvc}`]);
  });

  it('flags log lines with a card number, a JWE, a secret key, a webhook secret, a master key or a CVC, one finding per kind', () => {
    const log = write(
      'vault.log',
      [
        JSON.stringify({ msg: 'ok', ms: Number(cvc), time: `2026-11-30T10:15:16.${cvc}Z` }),
        JSON.stringify({ msg: `got ${CARDS.mastercard.number}` }),
        JSON.stringify({ msg: 'eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a.b.c.d' }),
        JSON.stringify({ key: 'sk_test_AAAAAAAAAAAAAAAAAAAAAAAA' }),
        JSON.stringify({ secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}` }),
        JSON.stringify({ note: 'master c2VjcmV0' }),
        JSON.stringify({ card: { cvc: amexCvc } }),
        JSON.stringify({ msg: `security code ${cvc} refused` }),
        `not JSON: cvc=${cvc}`,
      ].join('\n'),
    );
    expect(scanLog(log, ['c2VjcmV0']).map((f) => f.what)).toEqual([
      'card number 5555…',
      'card JWE',
      'secret key, admin key or webhook secret',
      'secret key, admin key or webhook secret',
      'master key',
      `CVC ${amexCvc}`,
      `CVC ${cvc}`,
      `CVC ${cvc}`,
    ]);
  });
});
