import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ShopDb, ShopQueryable } from './db.ts';
import type { Sessions } from './sessions.ts';
import type { VaultClient } from './vault-client.ts';

/** What every part of the shop's backend works with. */
export interface Shop {
  db: ShopDb;
  vault: VaultClient;
  sessions: Sessions;
  log: Logger;
}

/** Ids the shop makes: a prefix and 128 random bits. */
export const newShopId = (prefix: 'usr' | 'ord' | 'card') => `${prefix}_${randomBytes(16).toString('hex')}`;

export async function setting<T>(q: ShopQueryable, name: string): Promise<T> {
  const { rows } = await q.query<{ value: T }>('select value from settings where name = $1', [name]);
  return rows[0]!.value;
}
