import { base64url, compactDecrypt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptCardCiphertext } from '../../../server/keys/card-ciphertext.ts';
import { cardEncrypter } from '../../../widget/fields/encrypt.ts';

/**
 * The fields build their JWE from WebCrypto primitives; jose is the judge of
 * whether they got RFC 7516/7518 right, and the vault's own decrypt (built
 * from node:crypto primitives, held to jose in card-ciphertext-decrypt.test.ts)
 * must open what they send.
 */
async function vaultKeyPair() {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, key: { kty: 'EC' as const, crv: 'P-256' as const, x: jwk.x!, y: jwk.y!, kid: 'key_test' } };
}

const card = { number: '4242424242424242', exp_month: 12, exp_year: 2030, cvc: '516', name: 'Ada Lovelace' };
const encryptForVault = (plaintext: object, key: Parameters<typeof cardEncrypter>[0]) => cardEncrypter(key)(JSON.stringify(plaintext));

describe('cardEncrypter', () => {
  it('produces a compact JWE that jose decrypts with exactly ECDH-ES+A256KW and A256GCM', async () => {
    const { privateKey, key } = await vaultKeyPair();
    const jwe = await encryptForVault(card, key);
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey, {
      keyManagementAlgorithms: ['ECDH-ES+A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toEqual(card);
    expect(protectedHeader).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'key_test' });
  });

  it('produces a compact JWE that the vault’s own decrypt opens to the bytes jose opens it to', async () => {
    const { privateKey, key } = await vaultKeyPair();
    const vaultKey = createPrivateKey({ key: await exportJWK(privateKey), format: 'jwk' });
    for (let n = 0; n < 5; n++) {
      const jwe = await encryptForVault({ ...card, cvc: `${n}${n}${n}` }, key);
      const ours = decryptCardCiphertext(jwe, vaultKey);
      expect(Buffer.from(ours)).toEqual(Buffer.from((await compactDecrypt(jwe, privateKey)).plaintext));
      expect(JSON.parse(new TextDecoder().decode(ours))).toEqual({ ...card, cvc: `${n}${n}${n}` });
    }
  });

  it('puts kid, a current iat and a fresh ephemeral key in the protected header, and no zip', async () => {
    const { key } = await vaultKeyPair();
    const [first, second] = [await encryptForVault(card, key), await encryptForVault(card, key)];
    const header = decodeProtectedHeader(first);
    expect(Math.abs((header.iat as number) - Date.now() / 1000)).toBeLessThan(5);
    expect(header).not.toHaveProperty('zip');
    expect(Object.keys(header).sort()).toEqual(['alg', 'enc', 'epk', 'iat', 'kid']);
    expect(decodeProtectedHeader(second).epk).not.toEqual(header.epk);
    expect(second).not.toBe(first);
  });

  it('gives each message of one encrypter its own ephemeral key and content key, made ahead of the call', async () => {
    const { privateKey, key } = await vaultKeyPair();
    const encrypt = cardEncrypter(key);
    const messages = await Promise.all([1, 2, 3].map((n) => encrypt(JSON.stringify({ ...card, cvc: `${n}${n}${n}` }))));
    const headers = messages.map((jwe) => decodeProtectedHeader(jwe));
    expect(new Set(headers.map((header) => JSON.stringify(header.epk))).size).toBe(3);
    expect(new Set(messages.map((jwe) => jwe.split('.')[1])).size).toBe(3);
    for (const [n, jwe] of messages.entries()) {
      const { plaintext } = await compactDecrypt(jwe, privateKey);
      expect(JSON.parse(new TextDecoder().decode(plaintext)).cvc).toBe(`${n + 1}`.repeat(3));
    }
  });

  it('does not decrypt under another key', async () => {
    const { key } = await vaultKeyPair();
    const other = await vaultKeyPair();
    await expect(compactDecrypt(await encryptForVault(card, key), other.privateKey)).rejects.toThrow();
  });

  it('binds the protected header: a changed header fails authentication', async () => {
    const { privateKey, key } = await vaultKeyPair();
    const parts = (await encryptForVault(card, key)).split('.');
    const header = decodeProtectedHeader(parts.join('.'));
    parts[0] = base64url.encode(JSON.stringify({ ...header, kid: 'key_other' }));
    await expect(compactDecrypt(parts.join('.'), privateKey)).rejects.toThrow();
  });
});
