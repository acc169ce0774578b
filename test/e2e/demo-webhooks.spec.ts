/**
 * The vault's webhooks in the demo shop, as a merchant sees them: after a
 * purchase, the dashboard's Webhooks panel lists the `payment.captured`
 * delivery with its attempt (the shop's receiver answered 204) and what the
 * shop did with the event; "Resend" makes the vault send it again, a second
 * attempt appears, and the shop, which stores each event once, changes
 * nothing. The signing secret never reaches the page.
 */
import { readFileSync } from 'node:fs';
import { webhookEndpointPath } from '../../demo/server/webhook-endpoint.ts';
import { CARDS } from '../support/cards.ts';
import { confirmedOrderId, expect, fillCart, openDashboard, test, typeCard } from './support/demo.ts';

test('a purchase’s payment.captured shows in the dashboard’s webhook deliveries, and Resend makes a second attempt that changes nothing', async ({
  page,
  demo,
  shopTraffic,
}) => {
  await fillCart(page, demo.shop.url, ['Gold leaf tesserae (100 pcs)']);
  await page.goto(`${demo.shop.url}/checkout.html`);
  await typeCard(page, CARDS.mastercard);
  await page.getByRole('button', { name: /^Pay/ }).click();
  const orderId = await confirmedOrderId(page);
  const [payment] = (await demo.vaultGet(`/v1/payments?reference=${orderId}`)).data;
  const capturedEvent = (await demo.vaultGet(`/v1/events?payment=${payment.id}`)).data.find((event: { type?: string }) => event.type === 'payment.captured');
  expect(capturedEvent).toBeDefined();

  await openDashboard(page, demo.shop.url);
  const panel = page.getByRole('region', { name: 'Webhook deliveries table' });
  await expect(page.locator('#webhook-endpoint')).toContainText(`Events payment.*, token.deleted, token_batch.completed go to http://127.0.0.1:${demo.shop.port}/webhooks/tessera.`);
  const row = panel.getByRole('row').filter({ hasText: capturedEvent.id });
  // Delivered within moments of the payment; the panel follows a pending delivery by itself.
  await expect(row).toContainText('delivered');
  await expect(row).toContainText('payment.captured');
  await expect(row.getByRole('listitem')).toHaveCount(1);
  await expect(row.getByRole('listitem')).toContainText(/^1\. 204 at \d\d:\d\d:\d\d, \d+ ms$/);
  await expect(row).toContainText('Stored at');
  const storedBefore = (await demo.shop.db.query('select * from webhook_events where id = $1', [capturedEvent.id])).rows;
  expect(storedBefore).toHaveLength(1);

  const resend = row.getByRole('button', { name: `Resend payment.captured (${capturedEvent.id})` });
  await resend.click();
  await expect(page.getByRole('status')).toHaveText('The vault sends payment.captured to the shop again now.');
  await expect(row.getByRole('listitem')).toHaveCount(2);
  await expect(row.getByRole('listitem').nth(1)).toContainText(/^2\. 204 at /);
  await expect(row).toContainText('delivered');
  // Focus stays on the button the merchant pressed, though the table was drawn again.
  await expect(row.getByRole('button', { name: `Resend payment.captured (${capturedEvent.id})` })).toBeFocused();

  // The same webhook-id twice: stored once, the order as it was.
  expect((await demo.shop.db.query('select * from webhook_events where id = $1', [capturedEvent.id])).rows).toEqual(storedBefore);
  await expect(page.locator(`#order-${orderId}`)).toContainText('captured');
  const deliveries = (await demo.vaultGet(`/v1/webhook-endpoints/${JSON.parse(readFileSync(webhookEndpointPath(demo.shop.dataDir), 'utf8')).id}/deliveries`)).data;
  expect(deliveries.find((delivery: { event: string }) => delivery.event === capturedEvent.id).attempts.map((a: { status_code: number }) => a.status_code)).toEqual([204, 204]);

  // The page asked its own backend for the resend; the secret that signs the deliveries never came to it.
  const traffic = await shopTraffic.exchanges();
  expect(traffic.filter((exchange) => exchange.method === 'POST' && exchange.url.includes('/api/dashboard/webhooks/deliveries/')).map((exchange) => exchange.url)).toEqual([
    expect.stringMatching(/\/api\/dashboard\/webhooks\/deliveries\/whd_[A-Za-z0-9]+\/resend$/),
  ]);
  const { secret } = JSON.parse(readFileSync(webhookEndpointPath(demo.shop.dataDir), 'utf8')) as { secret: string };
  expect(traffic.filter((exchange) => `${exchange.url} ${exchange.requestBody} ${exchange.responseBody}`.includes(secret.slice(6)))).toEqual([]);
});
