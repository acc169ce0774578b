/**
 * A tokenization's session, Idempotency-Key and transport key are checked by
 * its one statement (`tessera_create_token`), after the card was opened. A
 * card refused before that statement must still get the answer those
 * checks give first, in the API's order: session, then the key's stored
 * response, then the transport key, then the card.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, openSession, uniqueLetters, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, fetchJwks } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('the order of a tokenization’s checks on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'tokenize-order' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  const invalidCard = () => encryptCard(vault.url, cardPlaintext(CARDS.visa, { number: '4242424242424241' }));
  const fromFields = async (session: string, card: string, idempotencyKey?: string) =>
    api(vault.url, 'POST', '/v1/tokens', {
      json: { key: shop.publishableKey, session, card },
      ...(idempotencyKey === undefined ? {} : { headers: { 'Idempotency-Key': idempotencyKey } }),
    });
  const fromServer = (card: string, idempotencyKey: string) =>
    api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card }, headers: { 'Idempotency-Key': idempotencyKey } });
  const sessionRow = async (session: string) =>
    (await vault.vault.db.query<{ tokens_created: number }>('select tokens_created from sessions where id = $1', [session])).rows[0]!;

  it('answers session_invalid to an expired session even when the card is invalid too', async () => {
    const session = await openSession(vault.url, shop);
    await vault.vault.db.query(`update sessions set expires_at = now() - interval '1 minute' where id = $1`, [session]);
    const response = await fromFields(session, await invalidCard());
    expect({ status: response.status, code: response.body.error.code }).toEqual({ status: 400, code: 'session_invalid' });
  });

  it('answers 429 to a session that made its 20 tokens even when the card is invalid too', async () => {
    const session = await openSession(vault.url, shop);
    await vault.vault.db.query('update sessions set tokens_created = 20 where id = $1', [session]);
    const response = await fromFields(session, await invalidCard());
    expect({ status: response.status, code: response.body.error.code }).toEqual({ status: 429, code: 'rate_limited' });
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('counts a tokenization against its session once when its Idempotency-Key replays it', async () => {
    const session = await openSession(vault.url, shop);
    const card = await encryptCard(vault.url, cardPlaintext());
    const key = uniqueLetters(16);
    const first = await fromFields(session, card, key);
    const again = await fromFields(session, card, key);
    expect(first.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('tessera-result')).toBe(first.text);
    expect(await sessionRow(session)).toEqual({ tokens_created: 1 });
  });

  it('answers idempotency_mismatch before the card’s own fault when the key was used for another request', async () => {
    const key = uniqueLetters(16);
    expect((await fromServer(await encryptCard(vault.url, cardPlaintext()), key)).status).toBe(201);
    const response = await fromServer(await invalidCard(), key);
    expect({ status: response.status, code: response.body.error.code }).toEqual({ status: 422, code: 'idempotency_mismatch' });
  });

  it('refuses a card encrypted to a key past its grace period with unknown_kid, even when the card is invalid too', async () => {
    const [retiring] = await fetchJwks(vault.url);
    const valid = await encryptCard(vault.url, cardPlaintext(), { key: retiring });
    const invalid = await encryptCard(vault.url, cardPlaintext(CARDS.visa, { number: '4242424242424241' }), { key: retiring });
    // No grace: this process still holds the private half (it is destroyed later), but it may no longer decrypt.
    await vault.vault.deps.keyring.rotate(0);
    for (const card of [valid, invalid]) {
      const response = await fromServer(card, uniqueLetters(16));
      expect({ status: response.status, code: response.body.error.code }).toEqual({ status: 400, code: 'unknown_kid' });
    }
  });

  it('replays a stored tokenization sent again after the key its card was encrypted to was destroyed', async () => {
    const [current] = await fetchJwks(vault.url);
    const card = await encryptCard(vault.url, cardPlaintext(), { key: current });
    const key = uniqueLetters(16);
    const first = await fromServer(card, key);
    expect(first.status).toBe(201);
    await vault.vault.deps.keyring.rotate(0);
    expect(await vault.vault.deps.keyring.destroyExpired()).toBeGreaterThan(0);
    const again = await fromServer(card, key);
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });
});
