import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../server/log.ts';
import { CARDS } from '../../support/cards.ts';
import { cardDataInValue } from '../../support/leaks.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger({ destination }), lines };
}

describe('the vault logger', () => {
  it('logs an error without its enumerable properties, such as the raw body body-parser attaches', () => {
    const { log, lines } = capture();
    const error = Object.assign(new SyntaxError('Unexpected token'), { body: '{"number":"4242424242424242"', type: 'entity.parse.failed' });
    log.error({ err: error }, 'request failed');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry.err).toMatchObject({ type: 'SyntaxError', message: 'Unexpected token' });
    expect(lines[0]).not.toContain('4242424242424242');
    expect(lines[0]).not.toContain('"body"');
  });

  it('masks card-number-like digit runs in any logged string, typed with or without spaces', () => {
    const { log, lines } = capture();
    log.warn({ note: 'got 4242 4242 4242 4242 from someone' }, 'card 5555555555554444 seen');
    expect(lines[0]).not.toMatch(/4242 4242 4242 4242|5555555555554444/);
    expect(lines[0]).toContain('[redacted-number]');
  });

  it('masks a card number inside a longer run of digits, glued to letters, or with URL-encoded spaces, as a logged path may hold one', () => {
    const { log, lines } = capture();
    log.info({ path: `/v1/tokens/${'4242'.repeat(2048)}` }, 'request');
    log.info({ path: '/v1/tokens/tok4242424242424242' }, 'request');
    log.info({ path: '/v1/tokens/4242%204242%204242%204242' }, 'request');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.replaceAll('%20', '')).not.toMatch(/4242424242424242|4242 4242 4242 4242/);
    expect(lines.map((line) => JSON.parse(line).path)).toEqual(['/v1/tokens/[redacted-number]', '/v1/tokens/tok[redacted-number]', '/v1/tokens/[redacted-number]']);
  });

  it.each([
    ['inside a token name in a path', { path: '/v1/tokens/tok_4242424242424242' }, '4242424242424242'],
    ['between letters', { note: 'abc4242424242424242def' }, '4242424242424242'],
    ['after an underscore and before a dot', { file: 'card_5555555555554444.json' }, '5555555555554444'],
    ['dashed, inside a word', { note: 'x4242-4242-4242-4242y' }, '4242-4242-4242-4242'],
    ['of 19 digits', { note: 'n=6011000990139424123' }, '6011000990139424123'],
    ['inside a longer run of digits', { note: '00004242424242424242000000' }, '4242424242424242'],
    ['in a key', { ['4242424242424242']: true }, '4242424242424242'],
    ['nested ten levels deep', { a: { b: { c: { d: { e: { f: { g: { h: { i: { j: 'tok_4242424242424242' } } } } } } } } } }, '4242424242424242'],
  ])('masks a card-number-like digit run %s', (_name, fields, digits) => {
    const { log, lines } = capture();
    log.info(fields, 'request');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(digits);
    expect(lines[0]).not.toContain(digits.slice(0, 12));
  });

  it('masks a digit run inside a token in the message and its format arguments', () => {
    const { log, lines } = capture();
    log.warn('unknown token tok_4242424242424242 at %s', '/v1/tokens/x5555555555554444x');
    expect(lines[0]).not.toMatch(/424242424242|555555555555/);
    expect(JSON.parse(lines[0]!).msg).toBe('unknown token tok_[redacted-number] at /v1/tokens/x[redacted-number]x');
  });

  it('leaves shorter numbers, ids and timestamps readable', () => {
    const { log, lines } = capture();
    log.info({ order: 'order-10012345678', at: '2026-11-22T10:00:00.123Z', last4: '4242', id: 'tok_8Hq2aB3cD4eF5gH6iJ7kL8' }, 'ok');
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ order: 'order-10012345678', at: '2026-11-22T10:00:00.123Z', last4: '4242', id: 'tok_8Hq2aB3cD4eF5gH6iJ7kL8' });
  });

  it('leaves a SHA-256 digest under `hash` whole, as the audit chain head an operator copies, even with 12 digits in a row', () => {
    const { log, lines } = capture();
    const digest = `6184c0e665e44349bb909ec8fa9d31298ab7fcca7230209bd${'4242424242424'}b3`;
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    log.info({ audit_chain: 'mer_x', seq: 17, hash: digest }, 'audit chain head');
    // The same digits anywhere else, or under `hash` but not a digest, are masked.
    log.info({ note: digest, hash: `${digest}0` }, 'other');
    log.info({ hash: 'card 4242424242424242' }, 'other');
    expect(JSON.parse(lines[0]!).hash).toBe(digest);
    expect(lines[1]).not.toContain('4242424242424');
    expect(lines[2]).not.toContain('4242424242424242');
  });

  it('redacts fields that could hold secrets if a request-shaped object is logged', () => {
    const { log, lines } = capture();
    log.info({ headers: { authorization: 'Bearer sk_test_secret' }, card: 'eyJhbGciOi.x.y.z.w', cvc: CARDS.visa.cvc }, 'oops');
    expect(lines[0]).not.toContain('sk_test_secret');
    expect(lines[0]).not.toContain('eyJhbGciOi');
    // Not a search for the CVC's digits: the line's timestamp holds any three digits by chance.
    expect(JSON.parse(lines[0]!)).toMatchObject({ cvc: '[redacted]', card: '[redacted]', headers: { authorization: '[redacted]' } });
    expect(cardDataInValue(JSON.parse(lines[0]!))).toBeUndefined();
  });
});
