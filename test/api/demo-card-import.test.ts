/**
 * The demo dashboard's card import, against its backend and a real vault
 * without a browser: what the panel's journey (test/e2e/demo-card-import.spec.ts)
 * does not show — sign-in before the file is read, the file's limits, a
 * reference that looks like a card number refused before anything is sent,
 * results a page at a time, and the shop's log free of the cards it read.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_IMPORT_ROWS } from '../../demo/server/card-import-routes.ts';
import { loadDemoMerchant, type DemoMerchant } from '../../demo/server/config.ts';
import { api } from '../support/api.ts';
import { CARDS, numberedCard } from '../support/cards.ts';
import { DASHBOARD_PASSWORD, Shopper, startTestShop, type TestShop } from '../support/shop.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';

const YEAR = new Date().getUTCFullYear() + 2;
const HEADER = 'number,exp_month,exp_year,reference';

describe('the demo dashboard’s card import', () => {
  let vault: TestVault;
  let merchant: DemoMerchant;
  let shop: TestShop;
  let dashboard: Shopper;

  beforeAll(async () => {
    vault = await startTestVault({ name: 'demo-card-import' });
    merchant = loadDemoMerchant(vault.dataDir);
    shop = await startTestShop({ merchant, vaultUrl: vault.url, name: 'demo-card-import-shop' });
    dashboard = new Shopper(() => shop);
    expect((await dashboard.call('POST', '/api/dashboard/login', { json: { password: DASHBOARD_PASSWORD } })).status).toBe(200);
  });
  afterAll(async () => {
    await shop?.close();
    await vault?.close();
  });

  const batchesAtVault = async () =>
    (await api(vault.url, 'GET', '/v1/events?limit=100', { key: merchant.secretKey })).body.data.filter((event: { action: string }) => event.action === 'token_batch.created').length;

  async function finished(id: string) {
    for (let polls = 0; polls < 200; polls++) {
      const state = await dashboard.call('GET', `/api/dashboard/card-imports/${id}`);
      expect(state.status).toBe(200);
      if (state.body.import.status === 'completed') return state.body.import;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`import ${id} did not complete`);
  }

  it('reads no file before the dashboard is signed in', async () => {
    const stranger = new Shopper(() => shop);
    const refused = await stranger.call('POST', '/api/dashboard/card-imports', { json: { csv: `${HEADER}\n${CARDS.visa.number},1,${YEAR},x` } });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('dashboard_signed_out');
  });

  it('answers the results ten rows at a time, each row with its token, brand and last 4', async () => {
    const numbers = Array.from({ length: 12 }, (_, n) => numberedCard('411111', n + 1));
    const csv = [HEADER, ...numbers.map((number, n) => `${number},${(n % 12) + 1},${YEAR},paged-${n + 1}`)].join('\n');
    const started = await dashboard.call('POST', '/api/dashboard/card-imports', { json: { csv, correlationId: 'paged import' } });
    expect(started.status, started.text).toBe(202);
    expect(started.body.import).toMatchObject({ id: expect.stringMatching(/^tbat_/), correlationId: 'paged import', total: 12 });
    expect(await finished(started.body.import.id)).toMatchObject({ succeeded: 12, failed: 0 });

    const first = await dashboard.call('GET', `/api/dashboard/card-imports/${started.body.import.id}/results`);
    expect(first.body.hasMore).toBe(true);
    expect(first.body.results.map((result: { row: number }) => result.row)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(first.body.results[0]).toMatchObject({ row: 1, reference: 'paged-1', ok: true, token: expect.stringMatching(/^tok_/), card: { brand: 'visa', last4: numbers[0]!.slice(-4) } });
    const second = await dashboard.call('GET', `/api/dashboard/card-imports/${started.body.import.id}/results?after=10`);
    expect({ rows: second.body.results.map((result: { row: number }) => result.row), hasMore: second.body.hasMore }).toEqual({ rows: [11, 12], hasMore: false });
    for (const answer of [started, first, second]) for (const number of numbers) expect(answer.text).not.toContain(number);
  });

  it('applies “decline duplicates” to rows that leave the column empty: the card is refused when imported again', async () => {
    const number = numberedCard('555555', 7);
    const importOnce = async (declineDuplicates: boolean) => {
      const started = await dashboard.call('POST', '/api/dashboard/card-imports', { json: { csv: `${HEADER}\n${number},3,${YEAR},dup`, declineDuplicates } });
      expect(started.status, started.text).toBe(202);
      await finished(started.body.import.id);
      return (await dashboard.call('GET', `/api/dashboard/card-imports/${started.body.import.id}/results`)).body.results[0];
    };
    expect(await importOnce(true)).toMatchObject({ row: 1, ok: true, card: { brand: 'mastercard' } });
    expect(await importOnce(false)).toMatchObject({ row: 1, ok: false, token: null, error: { code: 'duplicate_card' } });
  });

  it('refuses a reference that looks like a card number, naming its cell, before anything reaches the vault', async () => {
    const before = await batchesAtVault();
    const csv = `${HEADER}\n${CARDS.mastercard.number},1,${YEAR},crm-1\n${CARDS.visa.number},1,${YEAR},card ${CARDS.amex.spaced}\n`;
    const refused = await dashboard.call('POST', '/api/dashboard/card-imports', { json: { csv } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toEqual({ code: 'invalid_csv', message: 'Line 3, column 4: a reference must not look like a card number: the vault keeps it in the clear.' });
    expect(await batchesAtVault()).toBe(before);
  });

  it(`takes at most ${MAX_IMPORT_ROWS} rows and 512 KB a file`, async () => {
    const row = `${CARDS.visa.number},1,${YEAR},r`;
    const many = await dashboard.call('POST', '/api/dashboard/card-imports', { json: { csv: [HEADER, ...Array.from({ length: MAX_IMPORT_ROWS + 1 }, () => row)].join('\n') } });
    expect(many.status).toBe(400);
    expect(many.body.error.message).toMatch(new RegExp(`^Line ${MAX_IMPORT_ROWS + 2}: the dashboard takes at most 1,000 cards a file`));
    const large = await dashboard.call('POST', '/api/dashboard/card-imports', { json: { csv: `${HEADER}\n${row}${' '.repeat(600 * 1024)}` } });
    expect(large.status).toBe(413);
    expect(large.body.error.code).toBe('file_too_large');
  });

  it('writes no card number, and nothing of the file, to the shop’s log', () => {
    const log = readFileSync(shop.logFile, 'utf8');
    expect(log).toContain('card import submitted');
    for (const number of [CARDS.visa.number, CARDS.mastercard.number, CARDS.amex.number, '411111']) expect(log).not.toContain(number);
    expect(log).not.toContain('paged-');
  });
});
