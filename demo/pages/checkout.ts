/**
 * Checkout: the order from the shop's server, then the card — a saved one
 * (the fields in cvc mode re-collect its CVC) or a new one (payment mode,
 * with "save this card" for a signed-in shopper) — and the confirmation.
 * After a decline the fields stay, and the shopper tries another card.
 */
import type { CardBrand } from '../../widget/loader/types.ts';
import { createCardForm } from './card-form.ts';
import { planCheckout } from './checkout-plan.ts';
import {
  byId,
  connectToVault,
  describeCard,
  el,
  formatAmount,
  formatExpiry,
  getJson,
  initHeader,
  Notices,
  postJson,
  showCartCount,
  type Cart,
  type Order,
  type SavedCard,
} from './shop.ts';

const PAYMENT_STATUS: Record<string, string> = {
  captured: 'Paid',
  authorized: 'Authorized: your card is charged when the order ships',
};

function showCart(cart: Cart): void {
  byId('cart-items').replaceChildren(
    ...cart.items.map((line) =>
      el('li', {}, el('span', {}, line.quantity > 1 ? `${line.name} × ${line.quantity}` : line.name), el('span', {}, formatAmount(line.amount, cart.currency))),
    ),
  );
  const total = formatAmount(cart.total, cart.currency);
  byId('cart-total').textContent = total;
  byId('submit').textContent = `Pay ${total}`;
}

function showConfirmation(order: Order): void {
  byId('order-id').textContent = order.id;
  byId('order-amount').textContent = formatAmount(order.amount, order.currency);
  byId('order-card').textContent = order.card ? describeCard(order.card) : '';
  byId('order-status').textContent = PAYMENT_STATUS[order.status] ?? order.status;
  byId('order-saved').textContent = order.cardSaved ? 'Yes, it is on your account for next time' : 'No';
  byId('card-form').hidden = true;
  byId('confirmation').hidden = false;
  showCartCount(0);
  // Moving focus reads the confirmation out and keeps keyboard users where the form was.
  byId('confirmation-heading').focus();
}

/** The "Pay with" radio group: saved cards first (the default checked), then "A new card". */
function showSavedCards(cards: SavedCard[], onChoose: (card: SavedCard | undefined) => void): SavedCard | undefined {
  if (cards.length === 0) return undefined;
  const chosen = cards.find((card) => card.isDefault) ?? cards[0]!;
  const option = (id: string, label: string, card: SavedCard | undefined) => {
    const input = el('input', { type: 'radio', name: 'pay-with', id, checked: card === chosen });
    input.addEventListener('change', () => onChoose(card));
    return el('div', { className: 'choice' }, input, el('label', { htmlFor: id }, label));
  };
  byId('saved-card-options').replaceChildren(
    ...cards.map((card) => option(`pay-${card.id}`, `${describeCard(card)}, expires ${formatExpiry(card.expMonth, card.expYear)}`, card)),
    option('pay-new', 'A new card', undefined),
  );
  byId('saved-cards').hidden = false;
  return chosen;
}

async function main(): Promise<void> {
  const notices = new Notices(byId('status'), byId('error'));
  const [user, cart] = await Promise.all([initHeader(), getJson<Cart>('/api/cart')]);
  if (cart.items.length === 0) {
    byId('cart-items').replaceChildren(el('li', {}, 'Your cart is empty. ', el('a', { href: '/' }, 'Browse the catalog')));
    byId('payment-panel').hidden = true;
    return;
  }
  showCart(cart);
  byId('save-hint').hidden = user !== null;
  notices.progress('Loading the secure card form…');
  const tessera = await connectToVault(notices);
  if (!tessera) return;
  notices.clear();

  let selected: SavedCard | undefined;
  const form = createCardForm(tessera, {
    form: byId<HTMLFormElement>('card-form'),
    button: byId('submit'),
    container: '#card-fields',
    notices,
    working: 'Processing your payment…',
    async complete(result, card) {
      const body = 'token' in result ? { token: result.token } : { saved_card: selected!.id, cvc: result.cvc };
      const { order } = await postJson<{ order: Order }>('/api/checkout', body);
      card.destroy();
      showConfirmation(order);
    },
  });
  const mountFor = (card: SavedCard | undefined) => {
    selected = card;
    form.mount(
      card
        ? { mode: 'cvc', token: card.token, brand: card.brand as CardBrand, last4: card.last4 }
        : { mode: 'payment', saveCard: user ? 'optional' : 'never', ...(user ? { customer: user.id } : {}) },
    );
  };
  const cards = user ? (await getJson<{ cards: SavedCard[] }>('/api/account')).cards : [];
  mountFor(showSavedCards(cards, mountFor));
}

const plan = new URLSearchParams(location.search).get('plan');
void (plan === null ? main() : planCheckout(plan));
