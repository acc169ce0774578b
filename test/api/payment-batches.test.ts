/**
 * Batch payment operations (api.md, "Payment links and batch payment
 * operations"): captures, voids, refunds and merchant-initiated charges in
 * one instruction, JSON or CSV, validated whole before 202 (a malformed CSV
 * names its line and column), worked through in the background with each
 * item's outcome, and a `payment_batch.completed` event.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { SANDBOX_CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('payment batches on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  let saved: string;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'payment-batches' });
    shop = await createMerchant(vault, { name: 'Batch Shop' });
    saved = await savedToken();
  });
  afterAll(() => vault?.close());

  /** A card on file, its first payment made (so later charges are merchant-initiated, with no CVC). */
  async function savedToken(number?: string): Promise<string> {
    const card = await encryptCard(vault.url, cardPlaintext(number === undefined ? undefined : { number, cvc: '123' }));
    const made = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card, reusable: true } });
    expect(made.status, made.text).toBe(201);
    // The customer's own payment that stores the credential: a batch charge is merchant-initiated and cites it.
    const first = await api(vault.url, 'POST', '/v1/payments', {
      key: shop.secretKey,
      json: { token: made.body.token, amount: 100, currency: 'EUR', setup_future_usage: true },
    });
    expect(first.status, first.text).toBe(201);
    return made.body.token;
  }

  const authorized = async (amount = 1000) => {
    const made = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: saved, amount, currency: 'EUR', capture: false } });
    expect(made.status, made.text).toBe(201);
    return made.body.id as string;
  };
  const captured = async (amount = 1000) => {
    const made = await api(vault.url, 'POST', '/v1/payments', { key: shop.secretKey, json: { token: saved, amount, currency: 'EUR' } });
    expect(made.status, made.text).toBe(201);
    return made.body.id as string;
  };
  const payment = async (id: string) => (await api(vault.url, 'GET', `/v1/payments/${id}`, { key: shop.secretKey })).body;

  async function completed(id: string): Promise<Record<string, any>> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const read = await api(vault.url, 'GET', `/v1/payment-batches/${id}`, { key: shop.secretKey });
      expect(read.status, read.text).toBe(200);
      if (read.body.status === 'completed') return read.body;
      if (Date.now() > deadline) throw new Error(`batch ${id} still ${read.body.status}`);
      await sleep(50);
    }
  }
  const results = async (id: string, query = '?limit=1000') => (await api(vault.url, 'GET', `/v1/payment-batches/${id}/results${query}`, { key: shop.secretKey })).body;
  const count = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from payment_batches')).rows[0]!.n;

  it('accepts JSON operations with 202 and applies each in order: a refused item is its result and never stops the others', async () => {
    const [toCapture, toPartlyCapture, toVoid] = [await authorized(), await authorized(), await authorized()];
    const toRefund = await captured(2000);
    const declining = await savedToken(SANDBOX_CARDS.merchant_initiated_declined);
    const items = [
      { op: 'capture', payment: toCapture },
      { op: 'capture', payment: toPartlyCapture, amount: 600 },
      { op: 'void', payment: toVoid },
      { op: 'refund', payment: toRefund, amount: 500, reference: 'rma-1' },
      { op: 'charge', token: saved, amount: 999, currency: 'EUR', initiator: 'merchant', agreement: 'unscheduled', reference: 'renewal-1' },
      { op: 'capture', payment: toCapture },
      { op: 'refund', payment: 'pay_nosuchpayment' },
      { op: 'charge', token: declining, amount: 999, currency: 'EUR' },
    ];
    const accepted = await api(vault.url, 'POST', '/v1/payment-batches', { key: shop.secretKey, json: { correlation_id: 'eod-2026-12-01', items } });
    expect(accepted.status, accepted.text).toBe(202);
    expect(accepted.body).toEqual({
      id: expect.stringMatching(/^pbat_[A-Za-z0-9]{22}$/),
      object: 'payment_batch',
      status: 'pending',
      correlation_id: 'eod-2026-12-01',
      total: 8,
      processed: 0,
      succeeded: 0,
      failed: 0,
      created_at: expect.any(String),
      completed_at: null,
    });
    expect(await completed(accepted.body.id)).toMatchObject({ processed: 8, succeeded: 5, failed: 3 });

    const { data } = await results(accepted.body.id);
    expect(data.map((r: { index: number; ok: boolean; status?: string; error?: { code: string } }) => [r.index, r.ok ? r.status : r.error!.code])).toEqual([
      [0, 'captured'],
      [1, 'captured'],
      [2, 'voided'],
      [3, 'partially_refunded'],
      [4, 'captured'],
      [5, 'payment_not_capturable'],
      [6, 'payment_not_found'],
      [7, 'card_declined'],
    ]);
    expect(data[3]).toMatchObject({ op: 'refund', reference: 'rma-1', payment: toRefund, refund: expect.stringMatching(/^re_/) });
    expect(data[7]).toMatchObject({ payment: expect.stringMatching(/^pay_/), error: { decline_code: 'insufficient_funds' } });
    expect(await payment(toPartlyCapture)).toMatchObject({ status: 'captured', amount_captured: 600 });
    expect(await payment(data[4].payment)).toMatchObject({ amount: 999, reference: 'renewal-1', token: saved });

    const events = await api(vault.url, 'GET', '/v1/events?limit=50', { key: shop.secretKey });
    const done = events.body.data.filter((e: { type?: string }) => e.type === 'payment_batch.completed');
    expect(done).toHaveLength(1);
    expect(done[0].data.object).toMatchObject({ id: accepted.body.id, status: 'completed', succeeded: 5, failed: 3 });
    // Every operation is an audit entry and an event, as if made one at a time.
    expect(events.body.data.filter((e: { type?: string; payment?: string }) => e.type === 'payment.captured' && e.payment === toCapture)).toHaveLength(1);
  });

  it('applies several operations on one payment in item order within a chunk, each with the event its own request would write', async () => {
    const [shared, other] = [await authorized(1000), await authorized(1000)];
    const items = [
      { op: 'capture', payment: shared, amount: 600 },
      { op: 'refund', payment: shared, amount: 200 },
      { op: 'void', payment: other },
      { op: 'refund', payment: shared },
      { op: 'refund', payment: shared },
      { op: 'capture', payment: other },
    ];
    const accepted = await api(vault.url, 'POST', '/v1/payment-batches', { key: shop.secretKey, json: { items } });
    expect(accepted.status, accepted.text).toBe(202);
    expect(await completed(accepted.body.id)).toMatchObject({ processed: 6, succeeded: 4, failed: 2 });
    const { data } = await results(accepted.body.id);
    expect(data.map((r: { ok: boolean; status?: string; error?: { code: string; param?: string } }) => (r.ok ? r.status : `${r.error!.code} (${r.error!.param})`))).toEqual([
      'captured',
      'partially_refunded',
      'voided',
      'refunded',
      'payment_not_refundable (id)',
      'payment_not_capturable (id)',
    ]);
    expect(await payment(shared)).toMatchObject({ status: 'refunded', amount_captured: 600, amount_refunded: 600 });

    const events = (await api(vault.url, 'GET', `/v1/events?payment=${shared}&limit=10`, { key: shop.secretKey })).body.data as { type?: string; data: { object: Record<string, unknown> } }[];
    const changes = events.filter((e) => e.type !== undefined && e.type !== 'payment.authorized').reverse();
    expect(changes.map((e) => [e.type, e.data.object['status'], e.data.object['amount_refunded']])).toEqual([
      ['payment.captured', 'captured', 0],
      ['payment.refunded', 'partially_refunded', 200],
      ['payment.refunded', 'refunded', 600],
    ]);
    // The last event's object is the payment as the API reads it, to its updated_at.
    expect(changes.at(-1)!.data.object).toEqual(await payment(shared));
  });

  it('takes the same operations as text/csv and pages the results by index', async () => {
    const payments = [await authorized(), await authorized(), await captured()];
    const csv = ['op,payment,token,amount,currency,reference', `capture,${payments[0]},,,,`, `capture,${payments[1]},,400,,order-2`, `refund,${payments[2]},,,,`, `charge,,${saved},250,EUR,"renewal, 2"`].join('\r\n');
    const accepted = await api(vault.url, 'POST', '/v1/payment-batches', { key: shop.secretKey, raw: csv, contentType: 'text/csv' });
    expect(accepted.status, accepted.text).toBe(202);
    expect(await completed(accepted.body.id)).toMatchObject({ total: 4, succeeded: 4 });
    const first = await results(accepted.body.id, '?limit=3');
    expect(first.has_more).toBe(true);
    const rest = await results(accepted.body.id, '?limit=3&starting_after=2');
    expect({ more: rest.has_more, rows: rest.data.map((r: { index: number; reference: string }) => [r.index, r.reference]) }).toEqual({ more: false, rows: [[3, 'renewal, 2']] });
    expect(await payment(payments[1]!)).toMatchObject({ status: 'captured', amount_captured: 400 });
    expect(await payment(payments[2]!)).toMatchObject({ status: 'refunded' });
  });

  it.each([
    ['an unknown column', 'op,payment,amount,note\ncapture,pay_a,100,x', 1, 4, 'invalid_csv'],
    ['no op column', 'payment,amount\npay_a,100', 1, undefined, 'invalid_csv'],
    ['a row with a cell too many', 'op,payment,amount\ncapture,pay_a,100\ncapture,pay_b,100,7', 3, 4, 'invalid_csv'],
    ['a row with a cell missing', 'op,payment,amount\ncapture,pay_a', 2, 3, 'invalid_csv'],
    ['a quote never closed', 'op,payment,amount\ncapture,"pay_a,100', 2, 2, 'invalid_csv'],
    ['an amount that is not a whole number', 'op,payment,amount\ncapture,pay_a,100\ncapture,pay_b,12.50', 3, 3, 'parameter_invalid'],
    ['an unknown operation', 'op,payment,amount\ncapture,pay_a,100\nrefnud,pay_b,100', 3, 1, 'parameter_invalid'],
    ['a charge with no currency', 'op,token,amount,currency\ncharge,tok_a,100,', 2, 4, 'parameter_invalid'],
    ['a reference holding a card number', 'op,payment,reference\nvoid,pay_a,4242424242424242', 2, 3, 'card_number_not_allowed'],
    ['a header and nothing else', 'op,payment,amount\n', 1, undefined, 'invalid_csv'],
  ])('refuses a CSV with %s whole, naming the line and column, and stores nothing', async (_what, csv, line, column, code) => {
    const before = await count();
    const refused = await api(vault.url, 'POST', '/v1/payment-batches', { key: shop.secretKey, raw: csv, contentType: 'text/csv' });
    expect({ code: refused.body.error?.code, line: refused.body.error?.line, column: refused.body.error?.column }).toEqual({ code, line, column });
    expect(refused.status).toBe(code === 'card_number_not_allowed' ? 422 : 400);
    expect(refused.body.error.message).toMatch(new RegExp(`^Line ${line}`));
    expect(refused.text).not.toContain('4242424242424242');
    expect(await count()).toBe(before);
  });

  it.each([
    ['no items', { items: [] }, 'items'],
    ['10,001 items', { items: Array.from({ length: 10_001 }, () => ({ op: 'void', payment: 'pay_a' })) }, 'items'],
    ['a capture without its payment', { items: [{ op: 'void', payment: 'pay_a' }, { op: 'capture' }] }, 'items.1.payment'],
    ['a customer-initiated charge', { items: [{ op: 'charge', token: 'tok_a', amount: 100, currency: 'EUR', initiator: 'customer' }] }, 'items.0.initiator'],
  ])('refuses a JSON batch with %s whole, and stores nothing', async (_what, body, param) => {
    const before = await count();
    const refused = await api(vault.url, 'POST', '/v1/payment-batches', { key: shop.secretKey, json: body });
    expect({ status: refused.status, code: refused.body.error.code, param: refused.body.error.param }).toEqual({ status: 400, code: 'parameter_invalid', param });
    expect(await count()).toBe(before);
  });

  it('answers another merchant’s batch as not found', async () => {
    const accepted = await api(vault.url, 'POST', '/v1/payment-batches', { key: shop.secretKey, json: { items: [{ op: 'void', payment: 'pay_nosuch' }] } });
    const other = await createMerchant(vault, { name: 'Other Shop' });
    const read = await api(vault.url, 'GET', `/v1/payment-batches/${accepted.body.id}`, { key: other.secretKey });
    expect({ status: read.status, code: read.body.error.code }).toEqual({ status: 404, code: 'payment_batch_not_found' });
  });
});
