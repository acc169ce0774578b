/**
 * The demo dashboard's "Migrate cards on file": the merchant uploads a CSV of
 * its saved cards (three test cards and one with a wrong check digit); the
 * shop's server encrypts the rows and sends them as one token batch; the
 * panel shows the progress to its end, each row's token or error code, and
 * the vault's token_batch.completed webhook arriving. The cards go no
 * further than the upload: not in the shop's answers (the demo fixture
 * checks every exchange), its log or its database. A malformed file is
 * refused naming its line and column, and nothing is sent.
 */
import { CARDS } from '../support/cards.ts';
import { dumpTables, scanLog, scanTableDump } from '../support/leaks.ts';
import { cardDataIn } from './support/card-data.ts';
import { expect, isCardUpload, openDashboard, test } from './support/demo.ts';

const YEAR = new Date().getFullYear() + 2;
/** The Visa test card with its last digit changed: the check digit fails, so the vault refuses that row alone. */
const WRONG_CHECK_DIGIT = `${CARDS.visa.number.slice(0, -1)}1`;

test('the dashboard migrates a CSV of cards on file as one token batch, with its progress, tokens, row errors and completion webhook', async ({ page, demo, shopTraffic }) => {
  // The vault's first batch starts its decrypt threads (about a second each on an idle machine).
  test.slow();
  const file = [
    'number,exp_month,exp_year,name,reference,customer',
    `${CARDS.visa.spaced},12,${YEAR},Ada Lovelace,crm-1,cus_e2e_1`,
    `${CARDS.mastercard.number},6,${YEAR},,crm-2,cus_e2e_2`,
    `${WRONG_CHECK_DIGIT},3,${YEAR},,crm-3,`,
    `${CARDS.amex.spaced},9,${YEAR % 100},"Somerville, Mary",crm-4,`,
  ].join('\n');
  await openDashboard(page, demo.shop.url);
  await expect(page.getByRole('link', { name: 'download a sample of sandbox test cards' })).toHaveAttribute('href', /^blob:/);
  await page.getByLabel('CSV file').setInputFiles({ name: 'cards.csv', mimeType: 'text/csv', buffer: Buffer.from(file) });
  await page.getByLabel(/Name of this migration/).fill('e2e-migration');
  await page.getByRole('checkbox', { name: /network token for each saved card/ }).check();
  await page.getByRole('button', { name: 'Import the cards' }).click();

  await expect(page.locator('#card-import-progress')).toContainText('Card import “e2e-migration” done: 3 cards tokenized, 1 failed. Network tokens:', { timeout: 20_000 });
  await expect(page.locator('#card-import-bar')).toHaveJSProperty('value', 4);
  const row = (n: number) => page.locator(`#card-import-row-${n}`);
  await expect(row(1)).toContainText('crm-1');
  await expect(row(1)).toContainText('Visa ending in 4242');
  await expect(row(2)).toContainText('Mastercard ending in 4444');
  await expect(row(3)).toContainText('invalid_card_number');
  await expect(row(4)).toContainText('American Express ending in 0005');
  // The file was dropped from the form once sent.
  await expect(page.getByLabel('CSV file')).toHaveValue('');

  // The tokens are the vault's, with the rows' customers, and each has a network token (the box was ticked).
  const tokenOf = async (n: number) => (await row(n).locator('code').textContent())!;
  const visa = await demo.vaultGet(`/v1/tokens/${await tokenOf(1)}`);
  expect(visa).toMatchObject({ reusable: true, customer: 'cus_e2e_1', card: { brand: 'visa', last4: '4242', name: 'Ada Lovelace' } });
  const amex = await demo.vaultGet(`/v1/tokens/${await tokenOf(4)}`);
  expect(amex).toMatchObject({ card: { brand: 'american-express', exp_year: YEAR }, network_token: { network: 'amex' } });
  await expect(row(3).locator('code')).toHaveCount(0);

  // The vault's signed completion event reached the shop's receiver, which stored it once; the webhooks panel lists its delivery.
  await expect(page.locator('#card-import-webhook')).toContainText('token_batch.completed webhook reached the shop at', { timeout: 20_000 });
  await expect(page.locator('#deliveries-table tbody')).toContainText('token_batch.completed');
  const { rows: events } = await demo.shop.db.query<{ payload: { data: { object: Record<string, unknown> } } }>(
    `select payload from webhook_events where type = 'token_batch.completed'`,
  );
  expect(events.map((event) => event.payload.data.object)).toContainEqual(
    expect.objectContaining({ correlation_id: 'e2e-migration', total: 4, succeeded: 3, failed: 1, status: 'completed' }),
  );

  // The cards went to the shop's server in the upload, and no further: not in any answer (the fixture), its log or its database.
  const uploads = (await shopTraffic.exchanges()).filter(isCardUpload);
  expect(uploads.map((upload) => cardDataIn(upload.requestBody))).toEqual([expect.stringContaining('card number')]);
  expect(scanLog(demo.shop.logFile, [])).toEqual([]);
  const dumps = await dumpTables(async (sql) => (await demo.shop.db.query<Record<string, unknown>>(sql)).rows);
  expect(dumps.flatMap((dump) => scanTableDump('shop database', dump))).toEqual([]);
});

test('the dashboard refuses a malformed card file, naming its line and column, and sends nothing', async ({ page, demo }) => {
  await openDashboard(page, demo.shop.url);
  const batchesBefore = (await demo.vaultGet('/v1/events?limit=100')).data.filter((event: { action: string }) => event.action === 'token_batch.created').length;
  const paste = page.getByLabel(/Or paste it here/);
  await paste.fill(['number,exp_month,exp_year', `${CARDS.visa.number},12,${YEAR}`, `${CARDS.mastercard.number},June,${YEAR}`].join('\n'));
  await page.getByRole('button', { name: 'Import the cards' }).click();
  await expect(page.locator('#card-import-error')).toHaveText('Line 3, column 2: exp_month must be a whole number.');

  await paste.fill(['number,exp_month,expiry_year', `${CARDS.visa.number},12,${YEAR}`].join('\n'));
  await page.getByRole('button', { name: 'Import the cards' }).click();
  await expect(page.locator('#card-import-error')).toContainText('Line 1, column 3: unknown column expiry_year; the columns are number, exp_month, exp_year');
  await expect(page.locator('#card-import')).toBeHidden();
  const batchesAfter = (await demo.vaultGet('/v1/events?limit=100')).data.filter((event: { action: string }) => event.action === 'token_batch.created').length;
  expect(batchesAfter).toBe(batchesBefore);
});
