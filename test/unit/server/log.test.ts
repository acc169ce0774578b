import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../server/log.ts';

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

  it('redacts fields that could hold secrets if a request-shaped object is logged', () => {
    const { log, lines } = capture();
    log.info({ headers: { authorization: 'Bearer sk_test_secret' }, card: 'eyJhbGciOi.x.y.z.w', cvc: '516' }, 'oops');
    expect(lines[0]).not.toContain('sk_test_secret');
    expect(lines[0]).not.toContain('eyJhbGciOi');
    expect(lines[0]).not.toContain('516');
  });
});
