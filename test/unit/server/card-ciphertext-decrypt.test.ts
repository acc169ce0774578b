import {
  createCipheriv,
  createHash,
  createECDH,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { describe, expect, it } from 'vitest';
import { decryptCardCiphertext } from '../../../server/keys/card-ciphertext.ts';
import { VaultError } from '../../../server/errors.ts';
import { cardPlaintext, randomCard } from '../../support/cards.ts';

/**
 * The vault opens card JWEs with node:crypto; jose, which it used before,
 * is the oracle: what jose opens, ours opens to the same bytes, and what jose
 * refuses for our profile (ECDH-ES+A256KW, P-256, A256GCM), ours refuses with
 * the one answer that says nothing of why.
 */
const ALG = 'ECDH-ES+A256KW';
const ENC = 'A256GCM';
const JOSE_PROFILE = { keyManagementAlgorithms: [ALG], contentEncryptionAlgorithms: [ENC] };

const vault = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherVault = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const plaintextOf = (card = randomCard()) => new TextEncoder().encode(JSON.stringify(cardPlaintext({ number: card, cvc: '123' })));
const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');

const joseEncrypt = (plaintext: Uint8Array, parameters: { apu?: Uint8Array; apv?: Uint8Array } = {}) =>
  new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: ALG, enc: ENC, kid: 'key_test', iat: Math.floor(Date.now() / 1000) })
    .setKeyManagementParameters(parameters)
    .encrypt(vault.publicKey);

const joseOpens = async (jwe: string, key: KeyObject = vault.privateKey) => (await compactDecrypt(jwe, key, JOSE_PROFILE)).plaintext;
const oursOpens = (jwe: string, key: KeyObject = vault.privateKey) => decryptCardCiphertext(jwe, key);

function concatKdf(sharedSecret: Buffer, apu: Buffer, apv: Buffer): Buffer {
  const prefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return [length, bytes];
  };
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from([0, 0, 0, 1]), sharedSecret, ...prefixed(Buffer.from(ALG)), ...prefixed(apu), ...prefixed(apv), Buffer.from([0, 0, 1, 0])]))
    .digest();
}

interface Forgery {
  /** Changes the protected header before it is encoded (it is the AAD, so these changes are authentic). */
  header?: (header: Record<string, unknown>, ephemeral: KeyObject) => void;
  cekBytes?: number;
  ivBytes?: number;
  tagBytes?: number;
}

/**
 * A JWE of our profile built here from node:crypto, with whatever header,
 * key, IV or tag length a test asks for and everything else correct (the tag
 * covers the header as sent). jose opens the unforged ones (tested below), so
 * a refusal of a forged one is the forgery's doing.
 */
function forge(plaintext: Uint8Array, forgery: Forgery = {}): string {
  const ephemeral = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = ephemeral.publicKey.export({ format: 'jwk' });
  const header: Record<string, unknown> = { alg: ALG, enc: ENC, kid: 'key_test', iat: Math.floor(Date.now() / 1000), epk: { kty, crv, x, y } };
  forgery.header?.(header, ephemeral.privateKey);
  const party = (name: string) => (typeof header[name] === 'string' ? Buffer.from(header[name] as string, 'base64url') : Buffer.alloc(0));
  const kek = concatKdf(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: vault.publicKey }), party('apu'), party('apv'));
  const cek = randomBytes(forgery.cekBytes ?? 32);
  const wrap = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  const encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
  const protectedSegment = b64(JSON.stringify(header));
  const iv = randomBytes(forgery.ivBytes ?? 12);
  const tagBytes = forgery.tagBytes ?? 16;
  // The content is sealed with the first 256 bits of the key, so a decrypt that truncated a longer key would open it.
  const cipher = createCipheriv('aes-256-gcm', cek.subarray(0, 32), iv, { authTagLength: tagBytes });
  cipher.setAAD(Buffer.from(protectedSegment, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [protectedSegment, b64(encryptedKey), b64(iv), b64(ciphertext), b64(cipher.getAuthTag())].join('.');
}

/** The JWE with one decoded byte of segment `index` changed, re-encoded canonically (so only the bytes differ). */
function flipped(jwe: string, index: number, at = 0): string {
  const segments = jwe.split('.');
  const bytes = Buffer.from(segments[index]!, 'base64url');
  bytes[at] = bytes[at]! ^ 0x01;
  segments[index] = bytes.toString('base64url');
  return segments.join('.');
}

function withSegment(jwe: string, index: number, segment: string): string {
  const segments = jwe.split('.');
  segments[index] = segment;
  return segments.join('.');
}

const offCurve = (header: Record<string, unknown>) => {
  const epk = header['epk'] as JsonWebKey;
  const y = Buffer.from(epk.y!, 'base64url');
  y[31] = y[31]! ^ 0x01;
  header['epk'] = { ...epk, y: y.toString('base64url') };
};

function expectRefusedByOurs(jwe: string, key: KeyObject = vault.privateKey): void {
  let refusal: unknown;
  try {
    decryptCardCiphertext(jwe, key, 'cards[3]');
  } catch (error) {
    refusal = error;
  }
  expect(refusal).toBeInstanceOf(VaultError);
  expect(refusal).toMatchObject({ code: 'invalid_jwe', message: 'The card ciphertext could not be decrypted.', param: 'cards[3]' });
}

describe('the vault’s card decrypt, held to jose', () => {
  it('opens what jose encrypts to the same bytes jose opens it to', async () => {
    for (let n = 0; n < 20; n++) {
      const plaintext = plaintextOf();
      const jwe = await joseEncrypt(plaintext);
      const ours = oursOpens(jwe);
      expect(Buffer.from(ours)).toEqual(Buffer.from(await joseOpens(jwe)));
      expect(Buffer.from(ours)).toEqual(Buffer.from(plaintext));
    }
  });

  it('opens a JWE carrying apu and apv, which go into the key derivation as jose puts them', async () => {
    const plaintext = plaintextOf();
    const jwe = await joseEncrypt(plaintext, { apu: new TextEncoder().encode('Alice'), apv: new TextEncoder().encode('Bob') });
    expect(Buffer.from(oursOpens(jwe))).toEqual(Buffer.from(await joseOpens(jwe)));
    // They are authenticated through the key: other party info derives another key, and the tag no longer matches.
    const header = JSON.parse(Buffer.from(jwe.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
    expect(header['apu']).toBe(b64('Alice'));
  });

  it('opens the JWEs this test forges when they are not forged, as jose does (so a refusal below is the forgery’s doing)', async () => {
    const plaintext = plaintextOf();
    for (const jwe of [forge(plaintext), forge(plaintext, { header: (header) => Object.assign(header, { apu: b64('u'), apv: b64('v') }) })]) {
      expect(Buffer.from(await joseOpens(jwe))).toEqual(Buffer.from(plaintext));
      expect(Buffer.from(oursOpens(jwe))).toEqual(Buffer.from(plaintext));
    }
  });

  it('refuses with one answer naming the param and nothing of the cause', async () => {
    const jwe = flipped(await joseEncrypt(plaintextOf()), 4);
    expectRefusedByOurs(jwe);
  });

  const tampered: [string, () => Promise<string> | string, KeyObject?][] = [
    ['a changed protected header byte', async () => flipped(await joseEncrypt(plaintextOf()), 0, 3)],
    ['a changed encrypted key byte', async () => flipped(await joseEncrypt(plaintextOf()), 1, 5)],
    ['a changed IV byte', async () => flipped(await joseEncrypt(plaintextOf()), 2)],
    ['a changed ciphertext byte', async () => flipped(await joseEncrypt(plaintextOf()), 3, 7)],
    ['a changed tag byte', async () => flipped(await joseEncrypt(plaintextOf()), 4, 15)],
    ['a truncated tag', async () => withSegment(await joseEncrypt(plaintextOf()), 4, b64(Buffer.from((await joseEncrypt(plaintextOf())).split('.')[4]!, 'base64url').subarray(0, 15)))],
    ['another vault key', async () => joseEncrypt(plaintextOf()), otherVault.privateKey],
    ['a crit header, authentic', () => forge(plaintextOf(), { header: (header) => Object.assign(header, { crit: ['exp'], exp: 1 }) })],
    ['no epk', () => forge(plaintextOf(), { header: (header) => delete header['epk'] })],
    ['an epk that is not EC', () => forge(plaintextOf(), { header: (header) => Object.assign(header, { epk: { ...(header['epk'] as object), kty: 'OKP' } }) })],
    [
      'an epk on another curve (P-384)',
      () =>
        forge(plaintextOf(), {
          header: (header) => {
            const { kty, crv, x, y } = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
            header['epk'] = { kty, crv, x, y };
          },
        }),
    ],
    ['an epk that carries its private d', () => forge(plaintextOf(), { header: (header, ephemeral) => Object.assign(header['epk'] as object, { d: ephemeral.export({ format: 'jwk' }).d }) })],
    ['an epk off the curve', () => forge(plaintextOf(), { header: offCurve })],
    ['an empty encrypted key', async () => withSegment(await joseEncrypt(plaintextOf()), 1, '')],
    ['a wrapped 384-bit content key', () => forge(plaintextOf(), { cekBytes: 48 })],
    ['a 16-byte IV', () => forge(plaintextOf(), { ivBytes: 16 })],
    ['a 12-byte tag', () => forge(plaintextOf(), { tagBytes: 12 })],
    ['apu and apv that are equal', () => forge(plaintextOf(), { header: (header) => Object.assign(header, { apu: b64('same'), apv: b64('same') }) })],
    ['an apu that is not a string', () => forge(plaintextOf(), { header: (header) => Object.assign(header, { apu: 7 }) })],
    ['alg ECDH-ES (direct) in an authentic header', () => forge(plaintextOf(), { header: (header) => Object.assign(header, { alg: 'ECDH-ES' }) })],
    ['enc A128GCM in an authentic header', () => forge(plaintextOf(), { header: (header) => Object.assign(header, { enc: 'A128GCM' }) })],
  ];

  it.each(tampered)('refuses %s, as jose does', async (_name, make, key) => {
    const jwe = await make();
    await expect(joseOpens(jwe, key)).rejects.toThrow();
    expectRefusedByOurs(jwe, key);
  });

  it('checks that ECDH.computeSecret, which takes the epk as a point, refuses a point off the curve', () => {
    const { kty, crv, x, y } = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const header: Record<string, unknown> = { epk: { kty, crv, x, y } };
    offCurve(header);
    const point = ({ x, y }: JsonWebKey) => Buffer.concat([Buffer.from([4]), Buffer.from(x!, 'base64url'), Buffer.from(y!, 'base64url')]);
    const agreement = createECDH('prime256v1');
    agreement.generateKeys();
    expect(() => agreement.computeSecret(point(header['epk'] as JsonWebKey))).toThrow(/not valid for specified curve/);
    expect(agreement.computeSecret(point({ x, y }))).toHaveLength(32);
  });

  // Narrower than jose, on purpose: nothing we know of sends these, and the front door (cardCiphertextKey) refuses zip already.
  const narrower: [string, (header: Record<string, unknown>) => void][] = [
    ['zip', (header) => Object.assign(header, { zip: 'DEF' })],
    ['an epk member other than kty, crv, x and y', (header) => Object.assign(header['epk'] as object, { kid: 'eph' })],
    ['an epk coordinate spelled with a leading zero byte', (header) => Object.assign(header['epk'] as object, { x: b64(Buffer.concat([Buffer.alloc(1), Buffer.from((header['epk'] as JsonWebKey).x!, 'base64url')])) })],
  ];

  it.each(narrower)('refuses %s, beyond what jose checks', (_name, change) => {
    expectRefusedByOurs(forge(plaintextOf(), { header: change }));
  });
});
