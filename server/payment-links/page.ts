import { Router, type Request, type Response } from 'express';
import { fill, PAY_CONFIG_ELEMENT_ID, PAY_PAGE_STRINGS, RTL_LOCALES, type PayPageConfig, type PayPageStrings } from '../../widget/shared/pay-page.ts';
import { clientIp, clientNetwork } from '../http/client-ip.ts';
import type { RateLimiter } from '../http/rate-limit.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { WidgetAssets } from '../fields/assets.ts';
import { PaymentLinkPath } from './schema.ts';
import { currentStatus, type PaymentLinkRecord } from './serialize.ts';
import type { PaymentLinks } from './service.ts';

/**
 * The hosted page's CSP: its own scripts and styles only, the card fields
 * framed from this same origin, fetches to this origin, and nobody may
 * frame the page itself (clickjacking a Pay button).
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "frame-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const escapeHtml = (value: string) => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
const scriptSafeJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');

/** `?locale=fr`, else the first of the shopper's Accept-Language the page speaks, else English. */
export function pageLocale(req: Request): string {
  const asked = typeof req.query['locale'] === 'string' ? [req.query['locale']] : [];
  const accepted = (req.get('accept-language') ?? '')
    .split(',')
    .map((part) => part.split(';')[0]!.trim());
  for (const tag of [...asked, ...accepted]) {
    const lang = tag.toLowerCase().split('-')[0]!;
    if (Object.hasOwn(PAY_PAGE_STRINGS, lang)) return lang;
  }
  return 'en';
}

/** The amount in the shopper's locale, from minor units (`4200` EUR → `42,00 €` in French). */
export function formatAmount(amount: number, currency: string, locale: string): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** digits);
}

/** `GET /pay/plink_…`: the hosted payment page, before the API's strict headers (it sets its own). */
export function payPageRoutes(deps: { links: PaymentLinks; merchants: MerchantDirectory; widget: WidgetAssets; limits: { perIp: RateLimiter } }): Router {
  const router = Router();
  router.get('/pay/:id', async (req, res) => {
    deps.limits.perIp.hit(`ip:${clientNetwork(clientIp(req))}`);
    res.set({
      'Content-Security-Policy': PAGE_CSP,
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Opener-Policy': 'same-origin',
    });
    const locale = pageLocale(req);
    // The outcome pages use the page's stylesheet too, without its script.
    const styles = deps.widget.pay?.styles ?? [];
    const strings = PAY_PAGE_STRINGS[locale]!;
    const parsed = PaymentLinkPath.safeParse({ id: req.params['id'] });
    const link = parsed.success ? await deps.links.find(parsed.data.id) : undefined;
    const merchant = link === undefined ? undefined : await deps.merchants.byId(link.merchant_id);
    if (link === undefined || merchant === undefined) {
      const main = `<h1>${escapeHtml(strings.notFoundTitle)}</h1><p>${escapeHtml(strings.notFoundText)}</p>`;
      return send(res, { status: 404, locale, title: strings.notFoundTitle, main, styles });
    }
    const names = { merchant: merchant.name, amount: formatAmount(link.amount, link.currency, locale) };
    const status = currentStatus(link);
    if (status !== 'active') {
      const [title, text] = status === 'expired' ? [strings.expiredTitle, strings.expiredText] : [strings.completedTitle, strings.completedText];
      const main = `${summary(link, names, strings)}<section class="outcome" data-state="${status}"><h2>${escapeHtml(title)}</h2><p>${escapeHtml(fill(text, names))}</p></section>`;
      return send(res, { status: 200, locale, title, main, styles });
    }
    if (deps.widget.pay === undefined || deps.widget.checkout === undefined) {
      return send(res, { status: 503, locale, title: strings.failed, main: `<h1>${escapeHtml(strings.failed)}</h1>`, styles });
    }
    const config: PayPageConfig = {
      link: link.id,
      publishableKey: merchant.publishable_key,
      locale,
      strings: {
        payButton: fill(strings.payButton, names),
        paying: strings.paying,
        paidTitle: strings.paidTitle,
        paidText: fill(strings.paidText, names),
        expiredTitle: strings.expiredTitle,
        expiredText: fill(strings.expiredText, names),
        completedTitle: strings.completedTitle,
        completedText: fill(strings.completedText, names),
        declined: strings.declined,
        declinedInsufficientFunds: strings.declinedInsufficientFunds,
        busy: strings.busy,
        failed: strings.failed,
      },
    };
    const main = `${summary(link, names, strings)}
<form id="pay-form" novalidate>
<div id="card"></div>
<p id="pay-error" class="error" role="alert"></p>
<button id="pay-button" type="submit" disabled>${escapeHtml(config.strings.payButton)}</button>
<p class="note">${escapeHtml(fill(strings.securedBy, names))}</p>
</form>
<section id="pay-outcome" class="outcome" hidden tabindex="-1"><h2></h2><p></p></section>`;
    const head = `<script type="application/json" id="${PAY_CONFIG_ELEMENT_ID}">${scriptSafeJson(config)}</script>
<script src="/v1/${deps.widget.checkout.hashedName}" integrity="${deps.widget.checkout.integrity}" defer></script>
<script type="module" src="${escapeHtml(deps.widget.pay.script)}"></script>`;
    send(res, { status: 200, locale, title: fill(strings.title, names), main, styles, head });
  });
  return router;
}

function summary(link: PaymentLinkRecord, names: { merchant: string; amount: string }, strings: PayPageStrings): string {
  const description = link.description === null ? '' : `<p class="description">${escapeHtml(link.description)}</p>`;
  const reference = link.reference === null ? '' : `<p class="reference">${escapeHtml(strings.reference)}: <span dir="ltr">${escapeHtml(link.reference)}</span></p>`;
  return `<header><p class="merchant">${escapeHtml(names.merchant)}</p><h1 class="amount">${escapeHtml(names.amount)}</h1>${description}${reference}</header>`;
}

function send(res: Response, page: { status: number; locale: string; title: string; main: string; styles: string[]; head?: string }): void {
  const { status, locale, title, main } = page;
  const styles = page.styles.map((href) => `<link rel="stylesheet" href="${escapeHtml(href)}">`).join('');
  res
    .status(status)
    .type('html')
    .send(`<!doctype html>
<html lang="${locale}" dir="${RTL_LOCALES.includes(locale) ? 'rtl' : 'ltr'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
${styles}
${page.head ?? ''}
</head>
<body><main>${main}</main></body>
</html>
`);
}
