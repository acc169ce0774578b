/**
 * The dashboard's subscriptions (the vault's list, its sandbox clock with
 * "Jump 1 month", and the charges it made) and "Take a phone order": the
 * card fields in moto mode, for a card the merchant's agent types in.
 */
import { createCardForm } from './card-form.ts';
import { longDate } from './checkout-plan.ts';
import { byId, connectToVault, describeCard, el, failureMessage, formatAmount, getJson, postJson, ShopApiError, type Notices } from './shop.ts';
import type { ShopSubscription } from './account-subscriptions.ts';

interface Charge {
  id: string;
  status: string;
  amount: number;
  currency: string;
  card: { brand: string; last4: string };
  declineCode: string | null;
  subscription: string | null;
  createdAt: string;
}

interface Clock {
  now: string;
  status: 'ready' | 'advancing';
}

interface Subscriptions {
  clock: Clock;
  subscriptions: (ShopSubscription & { customer: string })[];
  charges: Charge[];
}

const clockWords = (iso: string) =>
  `Sandbox clock: ${longDate(iso)}, ${new Date(iso).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'UTC' })} UTC.`;

function subscriptionRow(subscription: Subscriptions['subscriptions'][number]): HTMLTableRowElement {
  return el(
    'tr',
    { id: `dashboard-subscription-${subscription.id}` },
    el('td', {}, el('code', {}, subscription.id)),
    el('td', {}, subscription.customer),
    el('td', {}, `${subscription.plan}, ${formatAmount(subscription.amount, subscription.currency)} a ${subscription.interval}`),
    el('td', {}, describeCard(subscription.card)),
    el('td', {}, el('span', { className: `badge status-${subscription.status}` }, subscription.status)),
    el('td', {}, subscription.nextChargeAt ? longDate(subscription.nextChargeAt) : '—'),
  );
}

function chargeRow(charge: Charge): HTMLTableRowElement {
  const outcome = charge.declineCode ? `${charge.status} (${charge.declineCode})` : charge.status;
  return el(
    'tr',
    { id: `charge-${charge.id}` },
    el('td', {}, el('code', {}, charge.id)),
    el('td', {}, el('code', {}, charge.subscription ?? '')),
    el('td', {}, formatAmount(charge.amount, charge.currency)),
    el('td', {}, describeCard(charge.card)),
    el('td', {}, el('span', { className: `badge status-${charge.status}` }, outcome)),
  );
}

export async function renderSubscriptions(): Promise<void> {
  const { clock, subscriptions, charges } = await getJson<Subscriptions>('/api/dashboard/subscriptions');
  byId('sandbox-clock').textContent = clockWords(clock.now);
  byId<HTMLTableElement>('subscriptions-table').tBodies[0]!.replaceChildren(
    ...(subscriptions.length ? subscriptions.map(subscriptionRow) : [el('tr', {}, el('td', { colSpan: 6 }, 'No subscriptions yet.'))]),
  );
  byId<HTMLTableElement>('charges-table').tBodies[0]!.replaceChildren(
    ...(charges.length ? charges.map(chargeRow) : [el('tr', {}, el('td', { colSpan: 5 }, 'No charges yet.'))]),
  );
}

async function jumpMonth(button: HTMLElement, notices: Notices): Promise<void> {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  notices.progress('Moving the sandbox clock a month ahead and running the charges due…');
  try {
    const { clock, charges } = await postJson<{ from: string; clock: Clock; charges: Charge[] }>('/api/dashboard/clock/jump', { months: 1 });
    await renderSubscriptions();
    const declined = charges.filter((charge) => charge.status === 'declined').length;
    const made = charges.length === 1 ? '1 charge' : `${charges.length} charges`;
    notices.progress(`The clock is now ${longDate(clock.now)}: ${made} made${declined ? `, ${declined} declined` : ''}.`);
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** "12.50" or "12,50" in euros → 1250 cents; undefined for anything else. */
function cents(text: string): number | undefined {
  const match = /^\s*(\d{1,5})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
}

function invalid(input: HTMLInputElement, message: string): ShopApiError {
  input.setAttribute('aria-invalid', 'true');
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
  input.focus();
  return new ShopApiError(400, 'parameter_invalid', message);
}

interface PhoneOrder {
  order: { id: string };
  payment: Charge;
}

async function setUpPhoneOrders(notices: Notices, afterOrder: () => Promise<void>): Promise<void> {
  const tessera = await connectToVault(notices);
  if (!tessera) return;
  const description = byId<HTMLInputElement>('phone-description');
  const amount = byId<HTMLInputElement>('phone-amount');
  const form = createCardForm(tessera, {
    form: byId<HTMLFormElement>('phone-form'),
    button: byId('phone-submit'),
    container: '#phone-card-fields',
    notices,
    working: 'Charging the card…',
    async complete(result, card) {
      if (!('token' in result)) throw new Error('The card fields answered with a CVC, not a token.');
      const euros = cents(amount.value);
      const what = description.value.trim();
      // Checked before the shop's server is called; the fields keep the card, and the next try makes a new single-use token.
      if (what === '') throw invalid(description, 'Say what the customer ordered.');
      if (/\d[\d -]{10,}\d/.test(what)) throw invalid(description, 'Leave numbers out of the description: it is stored in the clear.');
      if (euros === undefined || euros < 50) throw invalid(amount, 'Type the amount in euros, at least 0.50 (say 12.50).');
      const { order, payment } = await postJson<PhoneOrder>('/api/dashboard/phone-orders', { token: result.token, amount: euros, description: what });
      card.destroy();
      form.mount({ mode: 'moto' });
      description.value = '';
      amount.value = '';
      await afterOrder();
      return payment.status === 'declined'
        ? `Phone order ${order.id}: the card was declined (${payment.declineCode ?? 'declined'}).`
        : `Phone order ${order.id}: ${formatAmount(payment.amount, payment.currency)} charged to ${describeCard(payment.card)}.`;
    },
  });
  form.mount({ mode: 'moto' });
}

export function setUpSubscriptions(notices: Notices, renderOrders: () => Promise<void>): void {
  const jump = byId('jump-month');
  jump.addEventListener('click', () => void jumpMonth(jump, notices));
  // The card fields (and their session at the vault) only when the agent takes an order, not on every visit.
  const start = byId('phone-start');
  start.addEventListener('click', () => {
    start.hidden = true;
    byId('phone-form').hidden = false;
    byId('phone-description').focus();
    void setUpPhoneOrders(notices, renderOrders);
  });
}
