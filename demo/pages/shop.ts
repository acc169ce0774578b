/**
 * What every page of the demo shop shares: calls to the shop's own backend,
 * the header (cart count, signed-in state), prices and card descriptions,
 * status and error lines, and loading the card fields from the vault.
 */
import { loadTessera } from '../../widget/loader/esm.ts';
import type { CardBrand, Tessera, TesseraError } from '../../widget/loader/types.ts';
import './demo.css';

/** An error answer from the shop's own server; its message is written for the shopper. */
export class ShopApiError extends Error {
  constructor(
    readonly status: number,
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

/** `el('li', {className: 'x'}, 'text', child)`: DOM without innerHTML, so nothing from the server is parsed as markup. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & Record<string, unknown> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

export async function callShop<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ShopApiError(0, 'network_error', 'We could not reach the shop. Check your connection and try again.');
  }
  const answer = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (response.ok && answer !== undefined) return answer as T;
  throw new ShopApiError(
    response.status,
    answer?.error?.code ?? 'unexpected_response',
    answer?.error?.message ?? 'The shop could not complete the request. Please try again.',
  );
}

export const getJson = <T>(path: string) => callShop<T>('GET', path);
export const postJson = <T>(path: string, body: unknown = {}) => callShop<T>('POST', path, body);

export interface User {
  id: string;
  email: string;
}

export interface CartLine {
  product_id: string;
  name: string;
  quantity: number;
  amount: number;
}

export interface Cart {
  currency: string;
  items: CartLine[];
  count: number;
  total: number;
}

export interface SavedCard {
  id: string;
  token: string;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  isDefault: boolean;
  /** The card's network token at its card network, when the shop has network tokens on. */
  networkToken: { status: string } | null;
}

export interface Order {
  id: string;
  status: string;
  amount: number;
  currency: string;
  items: CartLine[];
  card: { brand: string; last4: string } | null;
  cardSaved: boolean;
  createdAt: string;
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

export const brandName = (brand: string) => BRAND_NAMES[brand as CardBrand] ?? 'Card';

/** "Visa ending in 4242". */
export const describeCard = (card: { brand: string; last4: string }) => `${brandName(card.brand)} ending in ${card.last4}`;

export const formatExpiry = (month: number, year: number) => `${String(month).padStart(2, '0')}/${String(year % 100).padStart(2, '0')}`;

/** A small brand mark; decorative, the text beside it names the brand. */
export function brandIcon(brand: string): HTMLElement {
  const short: Record<string, string> = { visa: 'VISA', mastercard: 'MC', 'american-express': 'AMEX' };
  return el('span', { className: `brand-icon brand-${short[brand] ? brand : 'other'}`, ariaHidden: 'true' }, short[brand] ?? '▭');
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

/** Fills the header: the cart's item count and whether the shopper is signed in. Resolves with the user, if any. */
export async function initHeader(): Promise<User | null> {
  const [me, cart] = await Promise.all([
    getJson<{ user: User | null }>('/api/me').catch(() => ({ user: null })),
    getJson<Cart>('/api/cart').catch(() => undefined),
  ]);
  showCartCount(cart?.count ?? 0);
  const account = document.getElementById('nav-account');
  if (account) account.textContent = me.user ? 'Your account' : 'Sign in';
  if (account && !me.user) account.setAttribute('href', '/login.html');
  return me.user;
}

export function showCartCount(count: number): void {
  const counter = document.getElementById('cart-count');
  if (counter) counter.textContent = String(count);
}

/** How long the vault's checkout.js may take to load before the page says card payments are unavailable. */
const LOAD_TIMEOUT_MS = 10_000;

/** The publishable key from the shop's server, then checkout.js from the vault it names. */
export async function connectToVault(notices: Notices): Promise<Tessera | undefined> {
  let config: { publishableKey: string; vaultUrl: string };
  try {
    config = await getJson('/api/config');
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
 * move focus there.
 */
export function failureMessage(error: unknown): string | undefined {
  if (isTesseraError(error)) {
    if (error.code === 'validation_error') return undefined;
    if (error.code === 'network_error') return 'We could not reach the payment service. Nothing was done; please try again.';
    return error.message;
  }
  if (error instanceof ShopApiError) return error.message;
  return 'Something went wrong. Nothing was done; please try again.';
}
