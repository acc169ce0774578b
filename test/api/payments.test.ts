import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, uniqueLetters, type ApiResponse, type TestMerchant } from '../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('payments on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let otherShop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'payments' });
    shop = await createMerchant(vault);
    otherShop = await createMerchant(vault, { name: 'Other Shop' });
  });
  afterAll(() => vault?.close());

  let referenceCounter = 0;
  const run = uniqueLetters();
  const nextReference = () => `order-${storage}-${run}-${++referenceCounter}`;

  /** A token made by the merchant's server; `cvc: false` leaves the CVC out. */
  async function token(
    options: { number?: string; cvc?: string | false; reusable?: boolean; verify?: boolean; merchant?: TestMerchant } = {},
  ): Promise<string> {
    const number = options.number ?? CARDS.visa.number;
    const cvc = options.cvc === false ? undefined : (options.cvc ?? (number === CARDS.amex.number ? CARDS.amex.cvc : CARDS.visa.cvc));
    const plaintext = cardPlaintext({ number, cvc: cvc ?? '' }, cvc === undefined ? { cvc: undefined } : {});
    if (cvc === undefined) delete plaintext.cvc;
    const response = await api(vault.url, 'POST', '/v1/tokens', {
      key: (options.merchant ?? shop).secretKey,
      json: { card: await encryptCard(vault.url, plaintext), reusable: options.reusable ?? true, verify: options.verify ?? false },
    });
    expect(response.status, response.text).toBe(201);
    return response.body.token;
  }

  const pay = (body: Record<string, unknown>, options: { key?: string; idempotencyKey?: string } = {}) =>
    api(vault.url, 'POST', '/v1/payments', {
      key: options.key ?? shop.secretKey,
      json: { amount: 1999, currency: 'EUR', ...body },
      headers: options.idempotencyKey === undefined ? {} : { 'Idempotency-Key': options.idempotencyKey },
    });
  const action = (id: string, verb: 'capture' | 'void' | 'refunds', body: Record<string, unknown> = {}, idempotencyKey?: string) =>
    api(vault.url, 'POST', `/v1/payments/${id}/${verb}`, {
      key: shop.secretKey,
      json: body,
      headers: idempotencyKey === undefined ? {} : { 'Idempotency-Key': idempotencyKey },
    });
  const read = async (id: string) => (await api(vault.url, 'GET', `/v1/payments/${id}`, { key: shop.secretKey })).body;
  const storedCvc = async (tokenName: string) =>
    (
      await vault.vault.db.query<{ has_cvc: boolean }>('select cvc_sealed is not null as has_cvc from tokens where token = $1', [tokenName])
    ).rows[0]!.has_cvc;

  describe('outcomes of the sandbox test cards', () => {
    it.each([
      ['visa', CARDS.visa.number, 'visa', '4242'],
      ['mastercard', CARDS.mastercard.number, 'mastercard', '4444'],
      ['amex', CARDS.amex.number, 'american-express', '0005'],
    ])('approves %s and captures at once by default', async (_name, number, brand, last4) => {
      const tok = await token({ number });
      const reference = nextReference();
      const response = await pay({ token: tok, reference });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({
        id: expect.stringMatching(/^pay_[0-9A-Za-z]{22}$/),
        status: 'captured',
        amount: 1999,
        currency: 'EUR',
        amount_captured: 1999,
        amount_refunded: 0,
        token: tok,
        card: { brand, last4 },
        reference,
        recurring: false,
        decline_code: null,
      });
      expect(await read(response.body.id)).toEqual(response.body);
    });

    it.each(['generic_decline', 'insufficient_funds', 'expired_card', 'incorrect_cvc'] as const)(
      'declines %s with 402 card_declined, and stores the declined payment',
      async (declineCode) => {
        const tok = await token({ number: SANDBOX_CARDS[declineCode] });
        const reference = nextReference();
        const response = await pay({ token: tok, reference });
        expect(response.status).toBe(402);
        expect(response.body.error).toMatchObject({
          type: 'card',
          code: 'card_declined',
          decline_code: declineCode,
          payment: expect.stringMatching(/^pay_/),
        });
        const stored = await read(response.body.error.payment);
        expect(stored).toMatchObject({ status: 'declined', decline_code: declineCode, amount_captured: 0, reference, card: { last4: SANDBOX_CARDS[declineCode].slice(-4) } });
        const byReference = await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, { key: shop.secretKey });
        expect(byReference.body.data.map((p: { id: string }) => p.id)).toEqual([stored.id]);
      },
    );

    it('answers 502 acquirer_error for the acquirer-error card, stores nothing, and a retry with the same Idempotency-Key gets the payment', async () => {
      const tok = await token({ number: SANDBOX_CARDS.acquirer_error, reusable: false });
      const reference = nextReference();
      const idempotencyKey = `acq-${reference}`;
      const first = await pay({ token: tok, reference }, { idempotencyKey });
      expect(first.status).toBe(502);
      expect(first.body.error).toMatchObject({ type: 'api', code: 'acquirer_error' });
      expect((await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, { key: shop.secretKey })).body.data).toEqual([]);
      expect(await storedCvc(tok), 'the CVC is kept for the retry').toBe(true);

      const retry = await pay({ token: tok, reference }, { idempotencyKey });
      expect(retry.status, retry.text).toBe(201);
      expect(retry.body).toMatchObject({ status: 'captured', token: tok, reference });
      const again = await pay({ token: tok, reference }, { idempotencyKey });
      expect(again.status).toBe(201);
      expect(again.text).toBe(retry.text);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const listed = await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, { key: shop.secretKey });
      expect(listed.body.data.map((p: { id: string }) => p.id)).toEqual([retry.body.id]);
    });

    it('answers 502 every time for the acquirer-error card without an Idempotency-Key, and never spends the token', async () => {
      const tok = await token({ number: SANDBOX_CARDS.acquirer_error, reusable: false });
      expect((await pay({ token: tok })).status).toBe(502);
      expect((await pay({ token: tok })).status).toBe(502);
      const tokenNow = await api(vault.url, 'GET', `/v1/tokens/${tok}`, { key: shop.secretKey });
      expect(tokenNow.body.used_at).toBeNull();
    });
  });

  describe('the payment state machine', () => {
    async function authorized(amount = 1999): Promise<string> {
      const response = await pay({ token: await token(), amount, capture: false });
      expect(response.status, response.text).toBe(201);
      expect(response.body).toMatchObject({ status: 'authorized', amount, amount_captured: 0 });
      return response.body.id;
    }

    /** A refused call answers `status`/`code` and leaves the payment exactly as it was. */
    async function refused(id: string, call: () => Promise<ApiResponse>, status: number, code: string) {
      const before = await read(id);
      const response = await call();
      expect(response.status, response.text).toBe(status);
      expect(response.body.error.code).toBe(code);
      expect(await read(id)).toEqual(before);
    }

    it('captures in full when no amount is given', async () => {
      const id = await authorized();
      const captured = await action(id, 'capture');
      expect(captured.status).toBe(200);
      expect(captured.body).toMatchObject({ status: 'captured', amount_captured: 1999 });
    });

    it('captures part of an authorization, refuses more than authorized, and refunds in parts up to the captured amount', async () => {
      const id = await authorized(1999);
      await refused(id, () => action(id, 'refunds', { amount: 1 }), 422, 'payment_not_refundable');
      await refused(id, () => action(id, 'capture', { amount: 2000 }), 422, 'amount_too_large');
      const captured = await action(id, 'capture', { amount: 1000 });
      expect(captured.body).toMatchObject({ status: 'captured', amount: 1999, amount_captured: 1000 });
      await refused(id, () => action(id, 'capture', { amount: 500 }), 422, 'payment_not_capturable');
      await refused(id, () => action(id, 'void'), 422, 'payment_not_voidable');
      await refused(id, () => action(id, 'refunds', { amount: 1001 }), 422, 'amount_too_large');

      const first = await action(id, 'refunds', { amount: 400 });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ id: expect.stringMatching(/^re_/), object: 'refund', amount: 400, currency: 'EUR' });
      expect(first.body.payment).toMatchObject({ id, status: 'partially_refunded', amount_refunded: 400 });
      await refused(id, () => action(id, 'refunds', { amount: 601 }), 422, 'amount_too_large');
      const rest = await action(id, 'refunds');
      expect(rest.status).toBe(201);
      expect(rest.body.amount).toBe(600);
      expect(await read(id)).toMatchObject({ status: 'refunded', amount_captured: 1000, amount_refunded: 1000 });
      await refused(id, () => action(id, 'refunds', { amount: 1 }), 422, 'payment_not_refundable');
      await refused(id, () => action(id, 'void'), 422, 'payment_not_voidable');
      await refused(id, () => action(id, 'capture'), 422, 'payment_not_capturable');
    });

    it('voids an authorization, after which it can be neither captured, voided again nor refunded', async () => {
      const id = await authorized();
      const voided = await action(id, 'void');
      expect(voided.status).toBe(200);
      expect(voided.body).toMatchObject({ status: 'voided', amount_captured: 0 });
      await refused(id, () => action(id, 'capture'), 422, 'payment_not_capturable');
      await refused(id, () => action(id, 'void'), 422, 'payment_not_voidable');
      await refused(id, () => action(id, 'refunds'), 422, 'payment_not_refundable');
    });

    it('refuses capture, void and refund on a declined payment', async () => {
      const declined = await pay({ token: await token({ number: SANDBOX_CARDS.generic_decline }), capture: false });
      const id = declined.body.error.payment as string;
      await refused(id, () => action(id, 'capture'), 422, 'payment_not_capturable');
      await refused(id, () => action(id, 'void'), 422, 'payment_not_voidable');
      await refused(id, () => action(id, 'refunds'), 422, 'payment_not_refundable');
    });

    it('refuses void and a second capture on a payment captured at once, and refunds it in full', async () => {
      const id = (await pay({ token: await token() })).body.id as string;
      await refused(id, () => action(id, 'void'), 422, 'payment_not_voidable');
      await refused(id, () => action(id, 'capture'), 422, 'payment_not_capturable');
      expect((await action(id, 'refunds')).body.payment).toMatchObject({ status: 'refunded', amount_refunded: 1999 });
    });

    it('refuses bad amounts and unknown parameters with 400, and unknown payments with 404', async () => {
      const id = await authorized();
      for (const amount of [0, -5, 1.5, '100', 100_000_000]) {
        await refused(id, () => action(id, 'capture', { amount }), 400, 'parameter_invalid');
      }
      await refused(id, () => action(id, 'capture', { amount: 10, extra: true }), 400, 'parameter_unknown');
      expect((await action('pay_doesnotexist', 'capture')).body.error.code).toBe('payment_not_found');
      expect((await api(vault.url, 'GET', '/v1/payments/pay_doesnotexist', { key: shop.secretKey })).status).toBe(404);
      for (const body of [{ currency: 'eur' }, { currency: 'XXY' }, { amount: 0 }, { capture: 'yes' }]) {
        const response = await pay({ token: await token(), ...body });
        expect(response.status).toBe(400);
      }
    });
  });

  describe('tokens and CVCs', () => {
    it('spends a single-use token with its first payment: the next answers 409 token_used', async () => {
      const tok = await token({ reusable: false });
      expect((await pay({ token: tok })).status).toBe(201);
      const second = await pay({ token: tok });
      expect(second.status).toBe(409);
      expect(second.body.error.code).toBe('token_used');
    });

    it('lets exactly one of two concurrent payments on one single-use token through', async () => {
      for (let round = 0; round < 3; round++) {
        const tok = await token({ reusable: false });
        const reference = nextReference();
        const answers = await Promise.all([pay({ token: tok, reference }), pay({ token: tok, reference })]);
        expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
        expect(answers.find((a) => a.status === 409)!.body.error.code).toBe('token_used');
        const listed = await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, { key: shop.secretKey });
        expect(listed.body.data).toHaveLength(1);
      }
    });

    it('never refunds more than was captured when two refunds race', async () => {
      for (let round = 0; round < 3; round++) {
        const id = (await pay({ token: await token(), amount: 1000 })).body.id as string;
        const answers = await Promise.all([action(id, 'refunds', { amount: 700 }), action(id, 'refunds', { amount: 700 })]);
        expect(answers.map((a) => a.status).sort()).toEqual([201, 422]);
        expect(answers.find((a) => a.status === 422)!.body.error.code).toBe('amount_too_large');
        expect(await read(id)).toMatchObject({ amount_captured: 1000, amount_refunded: 700, status: 'partially_refunded' });
      }
    });

    it('uses the CVC held with a saved card for the first payment and erases it; later payments go through without one', async () => {
      const tok = await token();
      expect(await storedCvc(tok)).toBe(true);
      expect((await pay({ token: tok })).status).toBe(201);
      expect(await storedCvc(tok)).toBe(false);
      const merchantInitiated = await pay({ token: tok, recurring: true });
      expect(merchantInitiated.status).toBe(201);
      expect(merchantInitiated.body).toMatchObject({ status: 'captured', recurring: true });
    });

    it('uses a re-collected CVC once: it is not stored, and its ciphertext cannot be replayed', async () => {
      const tok = await token({ cvc: false });
      expect(await storedCvc(tok)).toBe(false);
      const cvc = await encryptCard(vault.url, { cvc: CARDS.visa.cvc });
      const first = await pay({ token: tok, cvc });
      expect(first.status, first.text).toBe(201);
      expect(await storedCvc(tok)).toBe(false);
      const replay = await pay({ token: tok, cvc });
      expect(replay.status).toBe(409);
      expect(replay.body.error.code).toBe('replayed_ciphertext');
    });

    it('refuses a re-collected CVC of the wrong length for the brand, or with anything else in it', async () => {
      const visa = await token({ cvc: false });
      const amex = await token({ number: CARDS.amex.number, cvc: false });
      const tooLong = await pay({ token: visa, cvc: await encryptCard(vault.url, { cvc: CARDS.amex.cvc }) });
      expect(tooLong.body.error).toMatchObject({ code: 'invalid_cvc', param: 'cvc' });
      const tooShort = await pay({ token: amex, cvc: await encryptCard(vault.url, { cvc: CARDS.visa.cvc }) });
      expect(tooShort.body.error).toMatchObject({ code: 'invalid_cvc', param: 'cvc' });
      const extra = await pay({ token: visa, cvc: await encryptCard(vault.url, { cvc: CARDS.visa.cvc, number: CARDS.visa.number }) });
      expect(extra.status).toBe(400);
      expect(extra.text).not.toContain(CARDS.visa.number);
      expect((await api(vault.url, 'GET', `/v1/payments?token=${visa}`, { key: shop.secretKey })).body.data).toEqual([]);
    });

    it('answers 404 for a payment on a deleted token', async () => {
      const tok = await token();
      expect((await api(vault.url, 'DELETE', `/v1/tokens/${tok}`, { key: shop.secretKey })).status).toBe(200);
      const response = await pay({ token: tok });
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe('token_not_found');
    });

    it('runs an account verification on token creation and keeps no CVC after it', async () => {
      const ok = await api(vault.url, 'POST', '/v1/tokens', {
        key: shop.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)), verify: true },
      });
      expect(ok.status).toBe(201);
      expect(ok.body.verification).toEqual({ status: 'succeeded', decline_code: null });
      expect(await storedCvc(ok.body.token)).toBe(false);
      const declined = await api(vault.url, 'POST', '/v1/tokens', {
        key: shop.secretKey,
        json: { card: await encryptCard(vault.url, cardPlaintext({ number: SANDBOX_CARDS.insufficient_funds, cvc: CARDS.visa.cvc })), verify: true },
      });
      expect(declined.status).toBe(201);
      expect(declined.body.verification).toEqual({ status: 'failed', decline_code: 'insufficient_funds' });
      // No payment exists for a verification.
      const payments = await api(vault.url, 'GET', `/v1/payments?token=${ok.body.token}`, { key: shop.secretKey });
      expect(payments.body.data).toEqual([]);
    });
  });

  describe('idempotency', () => {
    it('replays a payment byte for byte for the same key and body, refuses another body, and charges once', async () => {
      const tok = await token();
      const reference = nextReference();
      const idempotencyKey = `pay-${reference}`;
      const first = await pay({ token: tok, reference }, { idempotencyKey });
      const second = await pay({ token: tok, reference }, { idempotencyKey });
      expect(first.status).toBe(201);
      expect(second.text).toBe(first.text);
      const mismatch = await pay({ token: tok, reference, amount: 5 }, { idempotencyKey });
      expect(mismatch.status).toBe(422);
      expect(mismatch.body.error.code).toBe('idempotency_mismatch');
      const listed = await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, { key: shop.secretKey });
      expect(listed.body.data).toHaveLength(1);
    });

    it('replays a decline, a capture and a refund, and does each once', async () => {
      const declinedKey = `decline-${nextReference()}`;
      const declinedToken = await token({ number: SANDBOX_CARDS.generic_decline });
      const declined = await pay({ token: declinedToken }, { idempotencyKey: declinedKey });
      expect(declined.status).toBe(402);
      expect((await pay({ token: declinedToken }, { idempotencyKey: declinedKey })).text).toBe(declined.text);

      const id = (await pay({ token: await token(), capture: false })).body.id as string;
      const captureKey = `capture-${id}`;
      const capture = await action(id, 'capture', { amount: 1500 }, captureKey);
      expect((await action(id, 'capture', { amount: 1500 }, captureKey)).text).toBe(capture.text);
      const refundKey = `refund-${id}`;
      const refund = await action(id, 'refunds', { amount: 500 }, refundKey);
      const refundAgain = await action(id, 'refunds', { amount: 500 }, refundKey);
      expect(refundAgain.text).toBe(refund.text);
      expect(refundAgain.headers.get('idempotent-replayed')).toBe('true');
      expect(await read(id)).toMatchObject({ amount_captured: 1500, amount_refunded: 500 });
      // One key, two endpoints: the second is not answered with the first's response.
      const crossed = await action(id, 'void', {}, refundKey);
      expect(crossed.body.error.code).toBe('idempotency_mismatch');
    });
  });

  describe('isolation between merchants and keys', () => {
    it("shows another merchant none of this merchant's payments, and the publishable key none at all", async () => {
      const reference = nextReference();
      const id = (await pay({ token: await token(), reference, capture: false })).body.id as string;
      const other = { key: otherShop.secretKey };
      expect((await api(vault.url, 'GET', `/v1/payments/${id}`, other)).status).toBe(404);
      expect((await api(vault.url, 'GET', `/v1/payments?reference=${reference}`, other)).body.data).toEqual([]);
      expect((await api(vault.url, 'GET', '/v1/payments', other)).body.data).toEqual([]);
      for (const verb of ['capture', 'void', 'refunds']) {
        const response = await api(vault.url, 'POST', `/v1/payments/${id}/${verb}`, { ...other, json: {} });
        expect(response.status).toBe(404);
        expect(response.body.error.code).toBe('payment_not_found');
      }
      // Another merchant cannot charge this merchant's token either.
      const foreign = await pay({ token: (await read(id)).token }, { key: otherShop.secretKey });
      expect(foreign.body.error.code).toBe('token_not_found');
      // The other merchant's log holds its own refused attempts, and nothing of this merchant's.
      const events = await api(vault.url, 'GET', `/v1/events?payment=${id}`, other);
      expect(events.body.data.length).toBeGreaterThan(0);
      for (const event of events.body.data) expect(event).toMatchObject({ outcome: 'failed', actor: `sk_test_…${otherShop.secretKey.slice(-4)}` });

      const publishable = { key: shop.publishableKey, json: {} };
      for (const [method, path] of [
        ['POST', '/v1/payments'],
        ['GET', '/v1/payments'],
        ['GET', `/v1/payments/${id}`],
        ['POST', `/v1/payments/${id}/capture`],
        ['POST', `/v1/payments/${id}/void`],
        ['POST', `/v1/payments/${id}/refunds`],
        ['GET', '/v1/events'],
      ] as const) {
        const response = await api(vault.url, method, path, method === 'GET' ? { key: shop.publishableKey } : publishable);
        expect(response.status, `${method} ${path}`).toBe(403);
        expect(response.body.error.code).toBe('secret_key_required');
      }
      expect(await read(id)).toMatchObject({ status: 'authorized' });
    });
  });

  describe('audit log', () => {
    it('records every payment action with its outcome, and a refused one as failed with its code', async () => {
      const tok = await token();
      const id = (await pay({ token: tok, capture: false })).body.id as string;
      await action(id, 'capture', { amount: 1000 });
      await action(id, 'refunds', { amount: 100 });
      await action(id, 'void');
      const events = await api(vault.url, 'GET', `/v1/events?payment=${id}`, { key: shop.secretKey });
      expect(events.status).toBe(200);
      const summary = events.body.data.map((e: { action: string; outcome: string; code: string | null }) => [e.action, e.outcome, e.code]);
      expect(summary).toEqual([
        ['payment.voided', 'failed', 'payment_not_voidable'],
        ['payment.refunded', 'succeeded', null],
        ['payment.captured', 'succeeded', null],
        ['payment.authorized', 'succeeded', null],
      ]);
      for (const event of events.body.data) {
        expect(event).toMatchObject({ payment: id, actor: `sk_test_…${shop.secretKey.slice(-4)}` });
        if (event.outcome === 'succeeded') expect(event.token).toBe(tok);
      }

      const declined = await pay({ token: await token({ number: SANDBOX_CARDS.expired_card }) });
      const declinedEvents = await api(vault.url, 'GET', `/v1/events?payment=${declined.body.error.payment}`, { key: shop.secretKey });
      expect(declinedEvents.body.data.map((e: { action: string; code: string }) => [e.action, e.code])).toEqual([['payment.declined', 'expired_card']]);

      // A publishable key on a secret endpoint is a failed authentication in the operator's log: anyone can hold that key.
      const before = await api(vault.url, 'GET', '/v1/events?limit=1', { key: shop.secretKey });
      const refused = await api(vault.url, 'GET', `/v1/payments/${id}`, { key: shop.publishableKey });
      const latest = await api(vault.url, 'GET', '/v1/events?limit=1', { key: shop.secretKey });
      expect(latest.body.data[0].id).toBe(before.body.data[0].id);
      const { rows: failures } = await vault.vault.db.query<{ merchant_id: string | null; action: string; code: string; actor: string }>(
        'select merchant_id, action, code, actor from audit_events where request_id = $1',
        [refused.headers.get('request-id')],
      );
      expect(failures).toEqual([{ merchant_id: null, action: 'auth.failed', code: 'secret_key_required', actor: shop.publishableKey }]);

      const { rows } = await vault.vault.db.query<{ row: string }>('select row_to_json(a)::text as row from audit_events a');
      const dump = rows.map((r) => r.row).join('\n');
      for (const number of [CARDS.visa.number, SANDBOX_CARDS.expired_card, shop.secretKey]) expect(dump).not.toContain(number);
    });
  });
});
