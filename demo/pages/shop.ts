/**
 * What both demo pages share: asking the shop's server for its keys and
 * prices, loading the card fields from the vault, and the form around them
 * (one tokenization at a time, progress and errors announced to assistive
 * technology).
 */
import { loadTessera } from '../../widget/loader/esm.ts';
import type { Card, CardBrand, CardOptions, CvcResult, Tessera, TesseraError, TokenResult } from '../../widget/loader/types.ts';
import './demo.css';

/** What `/api/config` answers: the publishable key only, never the secret key. */
interface ShopConfig {
  publishableKey: string;
  vaultUrl: string;
}

/** A card as the shop's server describes it after reading the token from the vault. */
export interface ShopCard {
  brand: CardBrand | string;
  last4: string;
  expMonth: number;
  expYear: number;
}

/** How long the vault's checkout.js may take to load before the page says card payments are unavailable. */
const LOAD_TIMEOUT_MS = 10_000;

/** An error answer from the shop's own server; its message is written for the shopper. */
export class ShopApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`demo page: no #${id}`);
  return element as T;
}

export function getJson<T>(path: string): Promise<T> {
  return callShop<T>(path, { headers: { accept: 'application/json' } });
}

export function postJson<T>(path: string, body: unknown): Promise<T> {
  return callShop<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function callShop<T>(path: string, init: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ShopApiError('network_error', 'We could not reach the shop. Check your connection and try again.');
  }
  const body = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (response.ok && body !== undefined) return body as T;
  throw new ShopApiError(body?.error?.code ?? 'unexpected_response', body?.error?.message ?? 'The shop could not complete the request. Please try again.');
}

const BRAND_NAMES: Record<CardBrand, string> = {
  visa: 'Visa',
  mastercard: 'Mastercard',
  'american-express': 'American Express',
  'diners-club': 'Diners Club',
  discover: 'Discover',
  jcb: 'JCB',
  unionpay: 'UnionPay',
  maestro: 'Maestro',
  mir: 'Mir',
  elo: 'Elo',
  hiper: 'Hiper',
  hipercard: 'Hipercard',
  verve: 'Verve',
};

/** "Visa ending in 4242, expires 12/30". */
export function describeCard(card: ShopCard): string {
  const brand = BRAND_NAMES[card.brand as CardBrand] ?? 'Card';
  return `${brand} ending in ${card.last4}, expires ${String(card.expMonth).padStart(2, '0')}/${String(card.expYear % 100).padStart(2, '0')}`;
}

/** Minor units to a price, with the currency's own number of decimals (2 for EUR, 0 for JPY). */
export function formatAmount(minor: number, currency: string): string {
  const format = new Intl.NumberFormat(document.documentElement.lang, { style: 'currency', currency });
  return format.format(minor / 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2));
}

/** One polite status line for progress, one alert for errors; showing one clears the other. */
export class Notices {
  constructor(
    private readonly status: HTMLElement,
    private readonly alert: HTMLElement,
  ) {}

  progress(text: string): void {
    this.alert.textContent = '';
    this.status.textContent = text;
  }

  error(text: string): void {
    this.status.textContent = '';
    this.alert.textContent = text;
  }

  clear(): void {
    this.status.textContent = '';
    this.alert.textContent = '';
  }
}

/** The publishable key from the shop's server, then checkout.js from the vault it names. */
async function connectToVault(notices: Notices): Promise<Tessera | undefined> {
  let config: ShopConfig;
  try {
    config = await getJson<ShopConfig>('/api/config');
  } catch {
    notices.error("The shop's server is not answering, so card payments are unavailable. Reload the page to try again.");
    return undefined;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), LOAD_TIMEOUT_MS);
  });
  try {
    const TesseraFactory = await Promise.race([loadTessera(config.vaultUrl), timeout]);
    return TesseraFactory(config.publishableKey);
  } catch {
    notices.error(`The payment service (${config.vaultUrl}) could not be reached, so card payments are unavailable. Reload the page to try again.`);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

const isTesseraError = (error: unknown): error is TesseraError => error instanceof Error && error.name === 'TesseraError';

/**
 * The page's words for a failed tokenization or shop call, or nothing for a
 * validation error: the fields show that one at the field, announce it and
 * move focus there. Other failures may come from the loader, which the fields
 * cannot display, so the page always says them.
 */
function failureMessage(error: unknown): string | undefined {
  if (isTesseraError(error)) {
    if (error.code === 'validation_error') return undefined;
    if (error.code === 'network_error') return 'We could not reach the payment service. Nothing was done; please try again.';
    return error.message;
  }
  if (error instanceof ShopApiError) return error.message;
  return 'Something went wrong. Nothing was done; please try again.';
}

export interface CardFormSetup {
  cardOptions: CardOptions;
  form: HTMLFormElement;
  button: HTMLButtonElement;
  notices: Notices;
  /** Announced while the card is tokenized and sent to the shop's server. */
  working: string;
  /** Sends the token to the shop's server and shows the outcome; rejects with a `ShopApiError`. */
  complete(token: TokenResult, card: Card): Promise<void>;
}

/**
 * Mounts the card fields in `#card-fields` and runs the form: the button and
 * the shopper's Enter in the fields (the `submit` event) both tokenize, and
 * only one tokenization and shop call runs at a time, so one click is one
 * order even if the shopper clicks twice or presses Enter meanwhile.
 */
export async function mountCardForm(setup: CardFormSetup): Promise<void> {
  const { form, button, notices } = setup;
  notices.progress('Loading the secure card form…');
  const tessera = await connectToVault(notices);
  if (!tessera) return;

  let ready = false;
  let busy = false;
  // aria-disabled rather than disabled: the button stays focusable and announced while it cannot act.
  const setEnabled = () => button.setAttribute('aria-disabled', String(!ready || busy));

  const card = tessera.card(setup.cardOptions);
  const run = async (tokenize: () => Promise<TokenResult | CvcResult>) => {
    if (!ready || busy) return;
    busy = true;
    setEnabled();
    notices.progress(setup.working);
    try {
      const result = await tokenize();
      if (!('token' in result)) throw new Error('The card fields answered with a CVC, not a token.');
      await setup.complete(result, card);
      notices.clear();
    } catch (error) {
      const message = failureMessage(error);
      if (message === undefined) notices.clear();
      else notices.error(message);
    } finally {
      busy = false;
      setEnabled();
    }
  };

  card
    .on('ready', () => {
      ready = true;
      setEnabled();
      notices.clear();
    })
    .on('change', () => {
      // The shopper is correcting the card: the previous failure no longer applies.
      if (!busy) notices.clear();
    })
    .on('error', (error) => {
      ready = false;
      setEnabled();
      notices.error(`Card payments are unavailable on this page: ${error.message} (${error.code})`);
    })
    .on('submit', (event) => void run(() => (event.ok ? Promise.resolve(event.value) : Promise.reject(event.error))))
    .mount('#card-fields');

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void run(() => card.tokenize());
  });
}
