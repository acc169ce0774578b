/**
 * Network tokens in the demo shop: the merchant turns them on in the
 * dashboard, a shopper saves a card and sees "Network token active" on the
 * account page, the dashboard lists the card's network token and card art,
 * and its issuer buttons drive the sandbox lifecycle (suspend, resume,
 * delete), each followed by the vault.
 */
import { CARDS } from '../support/cards.ts';
import { expect, openDashboard, signUp, test, typeCard, userId } from './support/demo.ts';

test('a saved card gets a network token the account page shows, and the dashboard suspends, resumes and deletes it as the issuer would', async ({ page, demo }) => {
  await openDashboard(page, demo.shop.url);
  const setting = page.getByRole('checkbox', { name: /Network tokens/ });
  await setting.check();
  await expect(page.getByRole('status')).toHaveText('Setting saved.');
  try {
    const { email } = await signUp(page, demo.shop.url);
    await typeCard(page, CARDS.visa);
    await page.getByRole('button', { name: 'Save card' }).click();
    const card = page.locator('#card-list li').filter({ hasText: 'Visa •••• 4242' });
    await expect(card).toBeVisible();
    // Requested in the background: active once the sandbox network answers.
    await expect(async () => {
      await page.reload();
      await expect(card.getByText('Network token active')).toBeVisible({ timeout: 1000 });
    }).toPass({ timeout: 20_000 });

    const customer = await userId(demo, email);
    const [token] = (await demo.vaultGet(`/v1/tokens?customer=${customer}`)).data;
    expect(token.network_token).toMatchObject({ status: 'active', network: 'visa', card_art_id: expect.stringMatching(/^art_/) });

    await openDashboard(page, demo.shop.url);
    const row = page.locator('#saved-cards-table tbody tr').filter({ hasText: email });
    await expect(row).toContainText('visa · active');
    await expect(row).toContainText(token.network_token.card_art_id);
    await row.getByRole('button', { name: /^Suspend/ }).click();
    await expect(page.getByRole('status')).toHaveText('Network token of Visa ending in 4242: suspended.');
    await expect(row).toContainText('visa · suspended');
    await row.getByRole('button', { name: /^Resume/ }).click();
    await expect(row).toContainText('visa · active');
    await row.getByRole('button', { name: /^Delete/ }).click();
    await expect(row).toContainText('visa · deleted');
    await expect(row.getByRole('button')).toHaveCount(0);
    const events = (await demo.vaultGet(`/v1/events?token=${token.token}&limit=50`)).data
      .filter((event: { type?: string }) => event.type === 'network_token.updated')
      .map((event: { data: { object: { status: string } } }) => event.data.object.status);
    expect(events).toEqual(['deleted', 'active', 'suspended']);
  } finally {
    const restored = await page.request.patch(`${demo.shop.url}/api/dashboard/settings`, { data: { networkTokens: false } });
    expect(restored.status()).toBe(200);
  }
});
