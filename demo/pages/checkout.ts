/** The checkout page: the order from the shop's server, the card fields in payment mode, and the order confirmation. */
import { byId, describeCard, formatAmount, getJson, mountCardForm, Notices, postJson, type ShopCard } from './shop.ts';

interface Cart {
  currency: string;
  items: { name: string; quantity: number; amount: number }[];
  total: number;
}

interface CheckoutAnswer {
  order: { id: string; status: string; amount: number; currency: string };
  token: string;
  reusable: boolean;
  card: ShopCard;
  message: string;
}

const button = byId<HTMLButtonElement>('submit');

async function showCart(): Promise<void> {
  const list = byId('cart-items');
  try {
    const cart = await getJson<Cart>('/api/cart');
    list.replaceChildren(
      ...cart.items.map((item) => {
        const row = document.createElement('li');
        const name = document.createElement('span');
        name.textContent = item.quantity > 1 ? `${item.name} × ${item.quantity}` : item.name;
        const amount = document.createElement('span');
        amount.textContent = formatAmount(item.amount, cart.currency);
        row.append(name, amount);
        return row;
      }),
    );
    const total = formatAmount(cart.total, cart.currency);
    byId('cart-total').textContent = total;
    button.textContent = `Pay ${total}`;
  } catch {
    list.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'The order could not be loaded. Reload the page to try again.' }));
  }
}

function showConfirmation(answer: CheckoutAnswer): void {
  byId('order-message').textContent = answer.message;
  byId('order-id').textContent = answer.order.id;
  byId('order-amount').textContent = formatAmount(answer.order.amount, answer.order.currency);
  byId('order-card').textContent = describeCard(answer.card);
  byId('order-saved').textContent = answer.reusable ? 'Yes, for your next order' : 'No, used for this order only';
  byId('card-form').hidden = true;
  byId('confirmation').hidden = false;
  // Moving focus reads the confirmation out and keeps keyboard users where the form was.
  byId('confirmation-heading').focus();
}

void showCart();
void mountCardForm({
  cardOptions: { mode: 'payment', saveCard: 'optional' },
  form: byId<HTMLFormElement>('card-form'),
  button,
  notices: new Notices(byId('status'), byId('error')),
  working: 'Processing your order…',
  async complete(token, card) {
    showConfirmation(await postJson<CheckoutAnswer>('/api/checkout', { token: token.token }));
    card.destroy();
  },
});
