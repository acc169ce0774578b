/**
 * axe-core on the fields document, in every mode and locale, scanned
 * through the merchant page (AxeBuilder analyses cross-origin frames too).
 */
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { CARDS } from '../support/cards.ts';
import type { CardOptions } from '../../widget/shared/messages.ts';
import { expect, test } from './fixtures.ts';

const MODES: CardOptions[] = [
  { mode: 'payment', saveCard: 'optional', fields: { name: true, postalCode: true } },
  { mode: 'signup' },
  { mode: 'cvc', token: 'tok_saved', brand: 'visa', last4: '4242' },
];
const LOCALES = ['en', 'fr', 'ar'] as const;

/**
 * Violations on the whole page, the fields frame included, and how many
 * nodes axe checked inside the frame. The whole page, not just the frame:
 * page-level rules (one main landmark, one h1, content inside landmarks)
 * belong to the merchant's document, which holds the frame in its <main>.
 */
async function scanCard(page: Page): Promise<{ violations: string[]; nodesInFrame: number }> {
  // AxeBuilder silently leaves out a frame that does not answer its injection in time (seen on a loaded
  // machine): a scan that saw nothing inside the frame is repeated, a bounded number of times.
  let results = await new AxeBuilder({ page }).analyze();
  let nodesInFrame = countFrameNodes(results.passes);
  for (let attempt = 1; attempt < 3 && nodesInFrame === 0; attempt++) {
    results = await new AxeBuilder({ page }).analyze();
    nodesInFrame = countFrameNodes(results.passes);
  }
  const violations = results.violations.flatMap((rule) => rule.nodes.map((node) => `${rule.id} (${rule.impact}): ${JSON.stringify(node.target)} — ${node.failureSummary}`));
  return { violations, nodesInFrame };
}

const countFrameNodes = (passes: { nodes: { target: unknown[] }[] }[]) =>
  passes.flatMap((rule) => rule.nodes).filter((node) => node.target.length > 1).length;

for (const options of MODES) {
  for (const locale of LOCALES) {
    test(`axe finds no violation in the fields document in ${options.mode} mode, locale ${locale}`, async ({ openShop, page }) => {
      const shop = await openShop();
      const fields = await shop.mountReady('card', { ...options, locale });
      await expect(fields.locator('html')).toHaveAttribute('lang', locale);
      await expect(fields.locator('html')).toHaveAttribute('dir', locale === 'ar' ? 'rtl' : 'ltr');
      const { violations, nodesInFrame } = await scanCard(page);
      expect(nodesInFrame, 'axe checked nodes inside the fields frame').toBeGreaterThan(5);
      expect(violations).toEqual([]);
    });
  }
}

/*
 * Light scheme only: axe takes a transparent frame's background to be white
 * whatever the page behind it shows, so on a dark page it reports light text
 * as unreadable. layout.spec.ts checks the dark scheme's text instead.
 */
test('axe finds no violation in the fields document while it shows an error on every field', async ({ openShop, page }) => {
  const shop = await openShop();
  const fields = await shop.mountReady('card', MODES[0]);
  await fields.locator('#number').pressSequentially(CARDS.visa.number.slice(0, 10));
  expect(await shop.tokenize('card')).toMatchObject({ ok: false, error: { code: 'validation_error' } });
  await expect(fields.locator('[aria-invalid=true]')).toHaveCount(5);
  const { violations, nodesInFrame } = await scanCard(page);
  expect(nodesInFrame).toBeGreaterThan(5);
  expect(violations).toEqual([]);
});
