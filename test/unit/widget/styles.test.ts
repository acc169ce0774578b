import { describe, expect, it } from 'vitest';
import { sanitizeStyle } from '../../../widget/shared/styles.ts';

describe('merchant style sanitizer', () => {
  it('keeps allowed properties with plain values', () => {
    const style = { base: { color: '#111', fontSize: '16px', fontFamily: '"Inter", sans-serif' }, invalid: { color: 'rgb(176, 0, 0)' } };
    expect(sanitizeStyle(style)).toEqual({ style, rejected: [] });
  });

  it.each([
    ['a url(', 'url(https://evil.example/x.png)'],
    ['an @import', '@import "x"'],
    ['an expression(', 'expression(alert(1))'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a semicolon', 'red; background: red'],
    ['an opening brace', 'red{'],
    ['a closing brace', 'red}'],
    ['a less-than sign', '<red'],
    ['a greater-than sign', 'red>'],
    ['a backslash', 're\\64'],
    ['an uppercase URL(', 'URL(x)'],
    ['a var(', 'var(--x)'],
  ])('drops a value with %s and reports it without the value', (_name, value) => {
    const { style, rejected } = sanitizeStyle({ base: { color: value, fontSize: '16px' } });
    expect(style).toEqual({ base: { fontSize: '16px' } });
    expect(rejected).toEqual([{ state: 'base', property: 'color', reason: 'forbidden_value' }]);
    expect(JSON.stringify(rejected)).not.toContain(value);
  });

  it('drops an unknown property', () => {
    expect(sanitizeStyle({ base: { backgroundImage: 'none' } })).toEqual({
      style: { base: {} },
      rejected: [{ state: 'base', property: 'backgroundImage', reason: 'unknown_property' }],
    });
  });

  it('drops an unknown state', () => {
    expect(sanitizeStyle({ hover: { color: 'red' } }).rejected).toEqual([
      { state: 'hover', property: '*', reason: 'unknown_state' },
    ]);
  });

  it('drops a value that is not a string', () => {
    expect(sanitizeStyle({ base: { fontSize: 16 } }).rejected).toEqual([
      { state: 'base', property: 'fontSize', reason: 'not_a_string' },
    ]);
  });

  it.each([null, 'color: red', 42])('treats %s as no style at all', (input) => {
    expect(sanitizeStyle(input)).toEqual({ style: {}, rejected: [] });
  });
});
