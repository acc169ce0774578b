/** The cart: quantities the shopper can change, the total, and the way to checkout. */
import { byId, el, formatAmount, getJson, initHeader, postJson, showCartCount, type Cart } from './shop.ts';

function render(cart: Cart): void {
  const list = byId('cart-items');
  showCartCount(cart.count);
  byId('to-checkout').hidden = cart.items.length === 0;
  byId('cart-total').textContent = formatAmount(cart.total, cart.currency);
  if (cart.items.length === 0) {
    list.replaceChildren(el('li', {}, 'Your cart is empty. ', el('a', { href: '/' }, 'Browse the catalog')));
    return;
  }
  list.replaceChildren(
    ...cart.items.map((line) => {
      const quantity = el('input', { type: 'number', min: '0', max: '20', value: String(line.quantity), id: `qty-${line.product_id}`, className: 'quantity' });
      quantity.addEventListener('change', () => void change(line.product_id, Number(quantity.value)));
      const remove = el('button', { type: 'button', className: 'button link' }, 'Remove');
      remove.setAttribute('aria-label', `Remove ${line.name}`);
      remove.addEventListener('click', () => void change(line.product_id, 0));
      return el(
        'li',
        {},
        el('span', { className: 'line-name' }, line.name),
        el('span', { className: 'line-controls' }, el('label', { htmlFor: `qty-${line.product_id}`, className: 'visually-hidden' }, `Quantity of ${line.name}`), quantity, remove),
        el('span', {}, formatAmount(line.amount, cart.currency)),
      );
    }),
  );
}

async function change(productId: string, quantity: number): Promise<void> {
  const bounded = Number.isInteger(quantity) ? Math.min(Math.max(quantity, 0), 20) : 1;
  const cart = await postJson<Cart>('/api/cart', { product_id: productId, quantity: bounded });
  render(cart);
  byId('status').textContent = 'Cart updated.';
}

void initHeader();
void getJson<Cart>('/api/cart').then(render);
