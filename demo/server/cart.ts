/**
 * The one basket the demo shop sells. Its prices live on the shop's server:
 * the page only displays them, so a shopper cannot change what an order costs.
 * Amounts are in minor units, like the vault's API.
 */
export const CART = {
  currency: 'EUR',
  items: [
    { name: 'Glass tesserae, cobalt (1 kg)', quantity: 1, unitAmount: 2400 },
    { name: 'Tile nippers', quantity: 1, unitAmount: 1850 },
    { name: 'Mosaic grout, grey (500 g)', quantity: 2, unitAmount: 475 },
  ],
} as const;

export const CART_TOTAL = CART.items.reduce((total, item) => total + item.quantity * item.unitAmount, 0);
