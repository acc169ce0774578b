/**
 * A card typed into the fields becomes a token the merchant's server can
 * read with its secret key, in each mode of the widget.
 */
import { compactDecrypt } from 'jose';
import { CARDS, fetchJwks } from '../support/cards.ts';
import { expect, isFieldsDocument, readToken, test } from './fixtures.ts';
import { futureExpiry } from './support/harness.ts';

const expiryYear = () => new Date().getFullYear() + 1;

test.describe('tokenizing end to end', () => {
  test('payment mode with the "save card" box unticked makes a single-use token that the vault reads back as the typed card', async ({ openShop, env }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', saveCard: 'optional' });
    await expect(fields.getByRole('checkbox', { name: 'Save this card for next time' })).not.toBeChecked();
    await shop.typeCard('card', CARDS.visa);

    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: true, value: { reusable: false, card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: expiryYear() } } });
    if (!outcome.ok) return;
    expect(outcome.value.token).toMatch(/^tok_/);
    const token = await readToken(env, outcome.value.token);
    expect(token).toMatchObject({ token: outcome.value.token, reusable: false, used_at: null, card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: expiryYear() } });
  });

  test('payment mode with the "save card" box ticked makes a reusable token', async ({ openShop, env }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment', saveCard: 'optional', customer: 'cus_e2e_42' });
    await shop.typeCard('card', CARDS.mastercard);
    await fields.getByRole('checkbox', { name: 'Save this card for next time' }).check();

    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: true, value: { reusable: true, card: { brand: 'mastercard', last4: '4444' } } });
    if (!outcome.ok) return;
    expect(await readToken(env, outcome.value.token)).toMatchObject({
      reusable: true,
      customer: 'cus_e2e_42',
      card: { brand: 'mastercard', last4: '4444', exp_month: 12, exp_year: expiryYear() },
    });
  });

  test('signup mode saves the card as a reusable token and speaks of saving, not paying', async ({ openShop, env }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'signup' });
    await expect(fields.locator('legend')).toHaveText('Save card');
    await expect(fields.getByText('This card will be saved for future payments.')).toBeVisible();
    await expect(fields.getByRole('checkbox')).toHaveCount(0);
    await shop.typeCard('card', CARDS.amex);
    await expect(fields.locator('#number')).toHaveValue(CARDS.amex.spaced);

    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: true, value: { reusable: true, card: { brand: 'american-express', last4: '0005' } } });
    if (!outcome.ok) return;
    expect(await readToken(env, outcome.value.token)).toMatchObject({ reusable: true, card: { brand: 'american-express', last4: '0005' } });
  });

  test('cvc mode shows the saved card read-only and resolves with a compact JWE of the CVC to the vault’s current key', async ({ openShop, env, page }) => {
    const fieldsRequests: string[] = [];
    page.on('request', (request) => {
      if (isFieldsDocument(request.frame().url())) fieldsRequests.push(`${request.method()} ${new URL(request.url()).pathname}`);
    });
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'cvc', token: 'tok_saved', brand: 'visa', last4: '4242' });
    await expect(fields.getByText('•••• 4242')).toBeVisible();
    await expect(fields.locator('#number')).toHaveCount(0);
    await expect(fields.locator('#expiry')).toHaveCount(0);
    await fields.locator('#cvc').pressSequentially(CARDS.visa.cvc);

    const outcome = await shop.tokenize('card');
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    const jwe = outcome.value.cvc ?? '';
    expect(Object.keys(outcome.value)).toEqual(['cvc']);
    const parts = jwe.split('.');
    expect(parts).toHaveLength(5);
    expect(parts.every((part) => /^[A-Za-z0-9_-]*$/.test(part))).toBe(true);
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
    const [currentKey] = await fetchJwks(env.vault.url);
    expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: currentKey!.kid });
    expect(Math.abs(header.iat - Date.now() / 1000)).toBeLessThan(120);

    // The vault's own private key opens it, and inside is the CVC and nothing else.
    const privateKey = await env.vault.vault.deps.keyring.resolve(header.kid);
    expect(privateKey, 'the vault holds the private key for the kid').toBeDefined();
    const { plaintext } = await compactDecrypt(jwe, privateKey!);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toEqual({ cvc: CARDS.visa.cvc });
    // The handle is made in the frame: no token request to the vault.
    expect(fieldsRequests.filter((request) => request.startsWith('POST'))).toEqual([]);
  });

  test('a card changed after it was complete is tokenized as it stands when tokenize() is called', async ({ openShop, env }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment' });
    await shop.typeCard('card', CARDS.visa);
    await expect.poll(async () => (await shop.events('card', 'change')).at(-1)?.detail).toMatchObject({ brand: 'visa', complete: true });
    await fields.locator('#number').fill(CARDS.mastercard.number);
    await expect(fields.locator('#number')).toHaveValue(CARDS.mastercard.spaced);

    const outcome = await shop.tokenize('card');
    expect(outcome).toMatchObject({ ok: true, value: { card: { brand: 'mastercard', last4: '4444' } } });
    if (!outcome.ok) return;
    expect(await readToken(env, outcome.value.token)).toMatchObject({ card: { brand: 'mastercard', last4: '4444' } });
  });

  test('each tokenization of the same card sends a ciphertext of its own under a new ephemeral key', async ({ openShop, page }) => {
    const sent: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/v1/tokens') sent.push(JSON.parse(request.postData() ?? '{}').card);
    });
    const shop = await openShop();
    await shop.mountReady('card', { mode: 'payment' });
    await shop.typeCard('card', CARDS.visa);

    expect(await shop.tokenize('card')).toMatchObject({ ok: true });
    expect(await shop.tokenize('card')).toMatchObject({ ok: true });
    expect(sent).toHaveLength(2);
    const headers = sent.map((jwe) => JSON.parse(Buffer.from(jwe.split('.')[0]!, 'base64url').toString('utf8')));
    expect(headers[0].epk).not.toEqual(headers[1].epk);
    expect(sent[0]!.split('.')[1]).not.toBe(sent[1]!.split('.')[1]);
  });

  test('typing formats the number as the shopper expects and detects the brand', async ({ openShop }) => {
    const shop = await openShop();
    const fields = await shop.mountReady('card', { mode: 'payment' });
    await fields.locator('#number').pressSequentially(CARDS.mastercard.number);
    await expect(fields.locator('#number')).toHaveValue(CARDS.mastercard.spaced);
    await expect(fields.getByRole('img', { name: 'Mastercard' })).toBeVisible();
    await expect(fields.locator('#expiry')).toBeFocused();
    await fields.locator('#expiry').pressSequentially(futureExpiry());
    await expect(fields.locator('#expiry')).toHaveValue(`12 / ${futureExpiry().slice(2)}`);
    await expect.poll(async () => (await shop.events('card', 'change')).at(-1)?.detail).toMatchObject({ brand: 'mastercard', complete: false });
  });
});
