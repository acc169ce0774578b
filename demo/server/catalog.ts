/**
 * What the demo shop sells. Prices live on the shop's server: the pages only
 * display them, so a shopper cannot change what an order costs. Amounts are
 * in minor units, like the vault's API.
 */
export interface Product {
  id: string;
  name: string;
  description: string;
  unitAmount: number;
  /** The tile colour the catalog shows instead of a photo. */
  colour: string;
}

export const CURRENCY = 'EUR';

export const CATALOG: readonly Product[] = [
  { id: 'cobalt-glass', name: 'Glass tesserae, cobalt (1 kg)', description: 'Hand-cut smalti in deep blue.', unitAmount: 2400, colour: '#1f4e9c' },
  { id: 'gold-leaf', name: 'Gold leaf tesserae (100 pcs)', description: 'Venetian glass with 24 ct gold.', unitAmount: 5900, colour: '#c9a227' },
  { id: 'terracotta', name: 'Terracotta squares (2 kg)', description: 'Unglazed, frost-proof, 2 cm.', unitAmount: 1600, colour: '#b5562f' },
  { id: 'nippers', name: 'Tile nippers', description: 'Carbide wheels for glass and stone.', unitAmount: 1850, colour: '#59626b' },
  { id: 'grout-grey', name: 'Mosaic grout, grey (500 g)', description: 'Fine, sanded, for joints up to 3 mm.', unitAmount: 475, colour: '#9aa0a6' },
  { id: 'mesh', name: 'Fibreglass mesh (1 m²)', description: 'Backing for indirect-method panels.', unitAmount: 990, colour: '#d9d4c7' },
];

export const productById = (id: string): Product | undefined => CATALOG.find((product) => product.id === id);
