/** The catalog: products from the shop's server, each with an "Add to cart" button. */
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

void main();
