/**
 * The hosted payment page's script (`/pay/plink_…`, vault origin): mounts
 * the card fields with checkout.js, like any merchant page, and pays the
 * link with the single-use token they make. The card never leaves the
 * fields' iframe; this page only ever holds the token's name.
 */
import './pay.css';
import type { TokenResult, CvcResult, TesseraError } from '../loader/types.ts';
import { PAY_CONFIG_ELEMENT_ID, type PayPageConfig } from '../shared/pay-page.ts';

const config = JSON.parse(document.getElementById(PAY_CONFIG_ELEMENT_ID)!.textContent!) as PayPageConfig;
const { strings } = config;
const form = document.getElementById('pay-form') as HTMLFormElement;
const button = document.getElementById('pay-button') as HTMLButtonElement;
const problem = document.getElementById('pay-error') as HTMLElement;
const outcome = document.getElementById('pay-outcome') as HTMLElement;

/** How often a Pay waits for another shopper's payment on the same link to end. */
const BUSY_RETRIES = 10;

const card = window.Tessera!(config.publishableKey).card({ mode: 'payment', saveCard: 'never', locale: config.locale });
card.on('ready', () => {
  button.disabled = false;
});
card.mount('#card');

let paying = false;

function show(state: 'paid' | 'completed' | 'expired', title: string, text: string): void {
  card.destroy();
  form.hidden = true;
  outcome.dataset['state'] = state;
  outcome.querySelector('h2')!.textContent = title;
  outcome.querySelector('p')!.textContent = text;
  outcome.hidden = false;
  outcome.focus();
}

function again(message: string): void {
  problem.textContent = message;
  button.textContent = strings.payButton;
  button.disabled = false;
  paying = false;
}

async function send(token: string): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`/pay/${config.link}/payments`, {
      method: 'POST',
      // One key per token: a Pay whose answer was lost is answered the same, never paid twice.
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': `pay-${token}` },
      body: JSON.stringify({ token }),
    });
    if (response.status !== 409 || attempt >= BUSY_RETRIES) return response;
    const body = (await response.clone().json()) as { error?: { code?: string } };
    if (body.error?.code !== 'payment_link_busy') return response;
    await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('Retry-After') ?? 1) * 1000));
  }
}

async function pay(result: Promise<TokenResult | CvcResult>): Promise<void> {
  if (paying) return;
  paying = true;
  problem.textContent = '';
  button.disabled = true;
  button.textContent = strings.paying;
  let token: string;
  try {
    token = ((await result) as TokenResult).token;
  } catch (error) {
    // The fields say what is wrong with the card themselves.
    return again((error as TesseraError).code === 'validation_error' ? '' : strings.failed);
  }
  try {
    const response = await send(token);
    const body = (await response.json()) as { error?: { code?: string; decline_code?: string } };
    if (response.status === 201) return show('paid', strings.paidTitle, strings.paidText);
    const code = body.error?.code;
    if (code === 'payment_link_completed') return show('completed', strings.completedTitle, strings.completedText);
    if (code === 'payment_link_expired') return show('expired', strings.expiredTitle, strings.expiredText);
    if (code === 'card_declined') {
      // The token is spent: the shopper types another card in the same fields.
      card.clear();
      card.focus('number');
      return again(body.error?.decline_code === 'insufficient_funds' ? strings.declinedInsufficientFunds : strings.declined);
    }
    again(code === 'payment_link_busy' ? strings.busy : strings.failed);
  } catch {
    again(strings.failed);
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void pay(card.tokenize());
});
// Enter in the fields tokenizes there: the same Pay.
card.on('submit', (event) => {
  void pay(event.ok ? Promise.resolve(event.value) : Promise.reject(event.error));
});
