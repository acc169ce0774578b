/**
 * Checkout for a plan (`/checkout.html?plan=…`): the same page and card
 * fields as any order, with the save box forced on (`saveCard: 'always'`):
 * the shop's server takes the first period now, with the shopper present,
 * and the payment service charges the saved card every interval after it.
 */
import { createCardForm } from './card-form.ts';
import { byId, connectToVault, describeCard, el, formatAmount, getJson, initHeader, Notices, postJson } from './shop.ts';

interface Plan {
  id: string;
  name: string;
  amount: number;
  interval: string;
}

interface Subscribed {
  subscription: { plan: string; amount: number; currency: string; interval: string; nextChargeAt: string | null; card: { brand: string; last4: string } };
  firstPayment: { amount: number; currency: string };
}

export const longDate = (iso: string) => new Date(iso).toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });

function showSubscribed({ subscription, firstPayment }: Subscribed): void {
  byId('subscribed-plan').textContent = `${subscription.plan}, ${formatAmount(subscription.amount, subscription.currency)} a ${subscription.interval}`;
  byId('subscribed-paid').textContent = formatAmount(firstPayment.amount, firstPayment.currency);
  byId('subscribed-card').textContent = describeCard(subscription.card);
  byId('subscribed-next').textContent = subscription.nextChargeAt ? longDate(subscription.nextChargeAt) : '';
  byId('card-form').hidden = true;
  byId('subscription-confirmation').hidden = false;
  byId('subscribed-heading').focus();
}

export async function planCheckout(planId: string): Promise<void> {
  const notices = new Notices(byId('status'), byId('error'));
  const [user, { plans }] = await Promise.all([initHeader(), getJson<{ plans: Plan[] }>('/api/plans')]);
  const plan = plans.find((one) => one.id === planId);
  byId('summary-heading').textContent = 'Your subscription';
  if (plan === undefined) {
    byId('cart-items').replaceChildren(el('li', {}, 'This plan is not offered. ', el('a', { href: '/' }, 'Browse the catalog')));
    byId('payment-panel').hidden = true;
    return;
  }
  const price = `${formatAmount(plan.amount, 'EUR')} a ${plan.interval}`;
  byId('cart-items').replaceChildren(el('li', {}, el('span', {}, plan.name), el('span', {}, price)));
  byId('cart-total').textContent = `${formatAmount(plan.amount, 'EUR')} today`;
  byId('submit').textContent = `Subscribe for ${price}`;
  const hint = byId('save-hint');
  hint.hidden = false;
  if (user === null) {
    const next = encodeURIComponent(`/checkout.html?plan=${plan.id}`);
    hint.replaceChildren(el('a', { href: `/login.html?next=${next}` }, 'Sign in'), ' or ', el('a', { href: '/signup.html' }, 'create an account'), ' to subscribe.');
    byId('submit').hidden = true;
    return;
  }
  hint.textContent = `Your card is saved on your account: it pays ${formatAmount(plan.amount, 'EUR')} today and the same every ${plan.interval} until you cancel.`;
  notices.progress('Loading the secure card form…');
  const tessera = await connectToVault(notices);
  if (!tessera) return;
  notices.clear();
  const form = createCardForm(tessera, {
    form: byId<HTMLFormElement>('card-form'),
    button: byId('submit'),
    container: '#card-fields',
    notices,
    working: 'Setting up your subscription…',
    async complete(result, card) {
      if (!('token' in result)) throw new Error('The card fields answered with a CVC, not a token.');
      const subscribed = await postJson<Subscribed>('/api/subscribe', { plan_id: plan.id, token: result.token });
      card.destroy();
      showSubscribed(subscribed);
    },
  });
  form.mount({ mode: 'payment', saveCard: 'always', customer: user.id });
}
