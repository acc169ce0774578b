import { describe, expect, it } from 'vitest';
import { readFieldsConfig } from '../../../widget/fields/config.ts';

const key = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1', use: 'enc', alg: 'ECDH-ES+A256KW' };
const config = {
  publishableKey: 'pk_test_1',
  parentOrigin: 'https://shop.example',
  jwks: { keys: [key] },
};
const documentWith = (text: string | undefined) =>
  ({ getElementById: (id: string) => (id === 'tessera-config' && text !== undefined ? { textContent: text } : null) }) as unknown as Document;

describe('embedded fields configuration', () => {
  it('reads a well-formed configuration', () => {
    expect(readFieldsConfig(documentWith(JSON.stringify(config)))?.parentOrigin).toBe('https://shop.example');
  });

  it.each([
    ['is missing', undefined],
    ['is not JSON', '{'],
    ['has a parent origin with a path', JSON.stringify({ ...config, parentOrigin: 'https://shop.example/checkout' })],
    ['has a parent origin that is a wildcard', JSON.stringify({ ...config, parentOrigin: '*' })],
    ['has no encryption key', JSON.stringify({ ...config, jwks: { keys: [] } })],
    ['has an RSA key first', JSON.stringify({ ...config, jwks: { keys: [{ ...key, kty: 'RSA' }] } })],
    ['has no publishable key', JSON.stringify({ ...config, publishableKey: undefined })],
  ])('refuses a configuration that %s', (_name, text) => {
    expect(readFieldsConfig(documentWith(text))).toBeUndefined();
  });
});
