/** The catalog: products from the shop's server, each with an "Add to cart" button, and the plans sold by subscription. */
import { byId, el, formatAmount, getJson, initHeader, postJson, showCartCount, type Cart } from './shop.ts';

interface Product {
  id: string;
  name: string;
  description: string;
  unitAmount: number;
  colour: string;
}

async function main(): Promise<void> {
  void initHeader();
  const status = byId('status');
  const [catalog, cart] = await Promise.all([getJson<{ currency: string; products: Product[] }>('/api/catalog'), getJson<Cart>('/api/cart')]);
  const quantities = new Map(cart.items.map((line) => [line.product_id, line.quantity]));
  byId('products').replaceChildren(
    ...catalog.products.map((product) => {
      const tile = el('div', { className: 'tile', ariaHidden: 'true' });
      tile.style.setProperty('--tile', product.colour);
      const button = el('button', { className: 'button primary', type: 'button' }, 'Add to cart');
      button.setAttribute('aria-describedby', `name-${product.id}`);
      button.addEventListener('click', async () => {
        const quantity = (quantities.get(product.id) ?? 0) + 1;
        const updated = await postJson<Cart>('/api/cart', { product_id: product.id, quantity });
        quantities.set(product.id, quantity);
        showCartCount(updated.count);
        status.textContent = `${product.name} added to your cart (${updated.count} ${updated.count === 1 ? 'item' : 'items'}).`;
      });
      return el(
        'li',
        { className: 'product' },
        tile,
        el('h2', { id: `name-${product.id}` }, product.name),
        el('p', { className: 'note' }, product.description),
        el('p', { className: 'price' }, formatAmount(product.unitAmount, catalog.currency)),
        button,
      );
    }),
  );
}

interface Plan {
  id: string;
  name: string;
  description: string;
  amount: number;
  interval: string;
  colour: string;
}

/** Each plan links to the checkout, which takes its first period and saves the card for the rest. */
async function showPlans(): Promise<void> {
  const { plans } = await getJson<{ plans: Plan[] }>('/api/plans');
  byId('plans').replaceChildren(
    ...plans.map((plan) => {
      const tile = el('div', { className: 'tile', ariaHidden: 'true' });
      tile.style.setProperty('--tile', plan.colour);
      const subscribe = el('a', { className: 'button primary', href: `/checkout.html?plan=${encodeURIComponent(plan.id)}` }, 'Subscribe');
      subscribe.setAttribute('aria-describedby', `plan-${plan.id}`);
      return el(
        'li',
        { className: 'product' },
        tile,
        el('h3', { id: `plan-${plan.id}` }, plan.name),
        el('p', { className: 'note' }, plan.description),
        el('p', { className: 'price' }, `${formatAmount(plan.amount, 'EUR')} a ${plan.interval}`),
        subscribe,
      );
    }),
  );
}

void main();
void showPlans();
