/** The account page: saved cards (delete, choose the default, add one with no purchase) and past orders. */
import { showSubscriptions } from './account-subscriptions.ts';
import { createCardForm } from './card-form.ts';
import {
  brandIcon,
  brandName,
  byId,
  callShop,
  connectToVault,
  describeCard,
  el,
  failureMessage,
  formatAmount,
  formatExpiry,
  getJson,
  initHeader,
  Notices,
  postJson,
  ShopApiError,
  type Order,
  type SavedCard,
  type User,
} from './shop.ts';

interface Account {
  user: User;
  cards: SavedCard[];
  orders: Order[];
}

const notices = new Notices(byId('status'), byId('error'));

async function act(work: () => Promise<unknown>, done: string): Promise<void> {
  try {
    await work();
    await render();
    notices.progress(done);
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
  }
}

function cardItem(card: SavedCard): HTMLLIElement {
  const label = describeCard(card);
  const actions = el('div', { className: 'card-actions' });
  // The card network's own token for this card: payments on it go with a fresh cryptogram instead of the card number.
  if (card.networkToken?.status === 'active') actions.append(el('span', { className: 'badge status-captured' }, 'Network token active'));
  if (card.isDefault) {
    actions.append(el('span', { className: 'badge' }, 'Default'));
  } else {
    const makeDefault = el('button', { type: 'button', className: 'button' }, 'Make default');
    makeDefault.setAttribute('aria-label', `Make ${label} the default card`);
    makeDefault.addEventListener('click', () => void act(() => postJson(`/api/cards/${card.id}/default`), `${label} is now your default card.`));
    actions.append(makeDefault);
  }
  const remove = el('button', { type: 'button', className: 'button danger' }, 'Delete');
  remove.setAttribute('aria-label', `Delete ${label}`);
  remove.addEventListener('click', () => void act(() => callShop('DELETE', `/api/cards/${card.id}`), `${label} was deleted.`));
  actions.append(remove);
  return el(
    'li',
    { className: 'saved-card' },
    brandIcon(card.brand),
    el('span', { className: 'card-label' }, el('strong', {}, `${brandName(card.brand)} •••• ${card.last4}`), el('span', { className: 'note' }, `Expires ${formatExpiry(card.expMonth, card.expYear)}`)),
    actions,
  );
}

function orderItem(order: Order): HTMLLIElement {
  return el(
    'li',
    {},
    el('span', {}, new Date(order.createdAt).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' })),
    el('span', {}, formatAmount(order.amount, order.currency)),
    el('span', {}, order.card ? describeCard(order.card) : ''),
    el('span', { className: 'badge' }, order.status),
  );
}

async function render(): Promise<Account> {
  const account = await getJson<Account>('/api/account');
  byId('who').textContent = `Signed in as ${account.user.email}.`;
  byId('card-list').replaceChildren(...(account.cards.length ? account.cards.map(cardItem) : [el('li', { className: 'note' }, 'No saved cards yet.')]));
  byId('order-list').replaceChildren(...(account.orders.length ? account.orders.map(orderItem) : [el('li', { className: 'note' }, 'No orders yet.')]));
  return account;
}

async function main(): Promise<void> {
  void initHeader();
  let account: Account;
  try {
    account = await render();
  } catch (failure) {
    if (failure instanceof ShopApiError && failure.status === 401) return location.replace('/login.html?next=/account.html');
    return notices.error(failureMessage(failure) ?? '');
  }
  if (new URLSearchParams(location.search).has('added')) notices.progress('Your card was saved.');
  void showSubscriptions(byId('subscription-list'), notices);
  byId('logout').addEventListener('click', () => void postJson('/api/logout').then(() => location.assign('/')));

  const tessera = await connectToVault(notices);
  if (!tessera) return;
  const form = createCardForm(tessera, {
    form: byId<HTMLFormElement>('card-form'),
    button: byId('submit'),
    container: '#card-fields',
    notices,
    working: 'Checking and saving your card…',
    async complete(result, card) {
      if (!('token' in result)) throw new Error('The card fields answered with a CVC, not a token.');
      const { card: saved } = await postJson<{ card: SavedCard }>('/api/cards', { token: result.token });
      card.clear();
      await render();
      return `${describeCard(saved)} was saved.`;
    },
  });
  form.mount({ mode: 'signup', customer: account.user.id });
}

void main();
