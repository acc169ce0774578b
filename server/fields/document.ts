import type { FieldsDocumentConfig } from '../../widget/shared/fields-config.ts';
import { FIELDS_CONFIG_ELEMENT_ID } from '../../widget/shared/fields-config.ts';

/** JSON that is safe inside a `<script type="application/json">` element. */
function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

const escapeAttribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/**
 * The fields document: no inline script or style (the CSP forbids both), the
 * configuration as a JSON data block, and the built Lit bundle. Its
 * stylesheets are named as preloads: fetched at once, but, unlike a
 * `<link rel=stylesheet>` of the document's, not holding the script back
 * until they arrive; the script makes them stylesheets and waits for them
 * before its first render (widget/fields/main.ts).
 */
export function renderFieldsDocument(config: FieldsDocumentConfig, assets: { script: string; styles: string[] }): string {
  const styles = assets.styles.map((href) => `<link rel="preload" as="style" href="${escapeAttribute(href)}">`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>Card details</title>
<script type="application/json" id="${FIELDS_CONFIG_ELEMENT_ID}">${scriptSafeJson(config)}</script>
<script type="module" src="${escapeAttribute(assets.script)}"></script>
${styles}
</head>
<body></body>
</html>
`;
}

/**
 * The warm document (`/v1/fields/warm`), which checkout.js frames, hidden,
 * once the page is parsed (unless a card came first): it has no key, runs no script and sends no message;
 * being framed starts the vault site's renderer process on the merchant's
 * page, and it fetches the fields' script and stylesheet into the HTTP cache
 * that the card's frame (same page, same site) reads. The stylesheet is a
 * stylesheet here, not a preload, so the browser does not warn about an
 * unused preload; it styles an empty body.
 */
export function renderWarmDocument(assets: { script: string; styles: string[] }): string {
  const styles = assets.styles.map((href) => `<link rel="stylesheet" href="${escapeAttribute(href)}">`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Tessera</title>
<link rel="modulepreload" href="${escapeAttribute(assets.script)}">
${styles}
</head>
<body></body>
</html>
`;
}

/** What a frame gets when it must not show working fields; the loader reports the reason itself. */
export const UNAVAILABLE_DOCUMENT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Card fields unavailable</title></head>
<body>Card fields are not available here.</body></html>
`;
