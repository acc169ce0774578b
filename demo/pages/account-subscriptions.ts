/** The account page's subscriptions: each plan with its card, where it stands, the next charge, and Cancel. */
import { longDate } from './checkout-plan.ts';
import { describeCard, el, failureMessage, formatAmount, getJson, postJson, type Notices } from './shop.ts';

export interface ShopSubscription {
  id: string;
  plan: string;
  amount: number;
  currency: string;
  interval: string;
  status: 'active' | 'past_due' | 'unpaid' | 'canceled';
  nextChargeAt: string | null;
  periodsPaid: number;
  card: { brand: string; last4: string };
  canceledAt: string | null;
}

const STANDING: Record<ShopSubscription['status'], string> = {
  active: 'Active',
  past_due: 'Payment failed: we try the card again',
  unpaid: 'Unpaid: the card was declined every time',
  canceled: 'Canceled',
};

function subscriptionItem(subscription: ShopSubscription, onCancel: () => void): HTMLLIElement {
  const next = subscription.nextChargeAt ? `Next charge on ${longDate(subscription.nextChargeAt)}` : subscription.canceledAt ? `Canceled on ${longDate(subscription.canceledAt)}` : 'No further charges';
  const actions = el('div', { className: 'card-actions' }, el('span', { className: `badge status-${subscription.status}` }, STANDING[subscription.status]));
  if (subscription.status !== 'canceled') {
    const cancel = el('button', { type: 'button', className: 'button danger' }, 'Cancel');
    cancel.setAttribute('aria-label', `Cancel ${subscription.plan}`);
    cancel.addEventListener('click', onCancel);
    actions.append(cancel);
  }
  return el(
    'li',
    { className: 'saved-card', id: `subscription-${subscription.id}` },
    el(
      'span',
      { className: 'card-label' },
      el('strong', {}, `${subscription.plan}, ${formatAmount(subscription.amount, subscription.currency)} a ${subscription.interval}`),
      el('span', { className: 'note' }, `${describeCard(subscription.card)}. ${next}.`),
    ),
    actions,
  );
}

export async function showSubscriptions(list: HTMLElement, notices: Notices): Promise<void> {
  try {
    const { subscriptions } = await getJson<{ subscriptions: ShopSubscription[] }>('/api/subscriptions');
    const cancel = (subscription: ShopSubscription) => async () => {
      try {
        await postJson(`/api/subscriptions/${subscription.id}/cancel`);
        await showSubscriptions(list, notices);
        notices.progress(`${subscription.plan} is canceled: there will be no further charges.`);
      } catch (failure) {
        notices.error(failureMessage(failure) ?? '');
      }
    };
    list.replaceChildren(
      ...(subscriptions.length
        ? subscriptions.map((subscription) => subscriptionItem(subscription, () => void cancel(subscription)()))
        : [el('li', { className: 'note' }, 'No subscriptions. ', el('a', { href: '/#plans-heading' }, 'See the plans'))]),
    );
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
  }
}
