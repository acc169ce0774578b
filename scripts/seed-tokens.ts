/**
 * Many stored tokens fast, for the scale benchmark (`npm run seed`,
 * bench/scale.ts): each row made as a tokenization makes it — a distinct
 * generated card, its fingerprint under the merchant's key, the card sealed
 * under a card key of its own wrapped by the merchant's data key, so it reads
 * back, pays and decrypts like any token — and written in multi-row inserts
 * of `BATCH` rows (one statement over arrays, `unnest`), skipping the JWE
 * decryption and the per-token round trips of the API.
 *
 * Not a migration path (that is `tessera tokens import`): the seeded tokens
 * have no audit entries and no replay records, and their cards are test
 * numbers. The seed refuses a production vault.
 */
import { numberedCard } from '../test/support/cards.ts';
import { detectBrand } from '../server/cards/card.ts';
import type { VaultDeps } from '../server/app.ts';
import { newId } from '../server/lib/ids.ts';
import type { Merchant } from '../server/merchants/service.ts';

const BATCH = 5_000;
/** Customers get about this many tokens each, for the list-by-customer benchmark. */
export const TOKENS_PER_CUSTOMER = 10;

/** The customer of the `i`th seeded token. */
export const seededCustomer = (i: number) => `cus_seed_${Math.floor(i / TOKENS_PER_CUSTOMER)}`;

/**
 * Adds tokens number `from` to `to - 1` (the card numbers and customers
 * follow from the number, so a later call continues where one stopped).
 * Calls `progress` after each batch; answers the token ids it wrote.
 */
export async function seedTokens(
  deps: Pick<VaultDeps, 'db' | 'cards' | 'merchantKeys'>,
  merchant: Merchant,
  range: { from: number; to: number },
  progress: (done: number) => void = () => undefined,
): Promise<string[]> {
  const written: string[] = [];
  const year = new Date().getUTCFullYear() + 3;
  for (let start = range.from; start < range.to; start += BATCH) {
    const end = Math.min(range.to, start + BATCH);
    const columns = {
      token: [] as string[],
      customer: [] as string[],
      brand: [] as string[],
      last4: [] as string[],
      fingerprint: [] as string[],
      card_sealed: [] as Buffer[],
      card_key_sealed: [] as Buffer[],
      created_at: [] as Date[],
    };
    const now = Date.now();
    for (let i = start; i < end; i++) {
      const number = numberedCard('4', i);
      const token = newId('tok');
      const sealed = deps.cards.seal(merchant, { token }, { number });
      columns.token.push(token);
      columns.customer.push(seededCustomer(i));
      columns.brand.push(detectBrand(number).brand);
      columns.last4.push(number.slice(-4));
      columns.fingerprint.push(deps.merchantKeys.fingerprint(merchant, number));
      columns.card_sealed.push(Buffer.from(sealed.card_sealed));
      columns.card_key_sealed.push(Buffer.from(sealed.card_key_sealed!));
      columns.created_at.push(new Date(now - (range.to - i)));
    }
    await deps.db.query(
      `insert into tokens (merchant_id, token, reusable, customer, brand, last4, exp_month, exp_year, fingerprint,
                           card_sealed, card_key_sealed, data_key_version, created_at, updated_at)
       select $1, t.token, true, t.customer, t.brand, t.last4, 12, $2, t.fingerprint, t.card_sealed, t.card_key_sealed, $3, t.created_at, t.created_at
         from unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::timestamptz[])
              as t(token, customer, brand, last4, fingerprint, card_sealed, card_key_sealed, created_at)`,
      [
        merchant.id,
        year,
        merchant.data_key_version,
        columns.token,
        columns.customer,
        columns.brand,
        columns.last4,
        columns.fingerprint,
        columns.card_sealed,
        columns.card_key_sealed,
        columns.created_at,
      ],
    );
    for (const token of columns.token) written.push(token);
    progress(end - range.from);
  }
  return written;
}

/** What the stored tokens take: the table (with its TOAST) and each index, in bytes. */
export async function tokenStorage(db: VaultDeps['db']): Promise<{ tokens: number; table: number; indexes: { name: string; bytes: number }[] }> {
  const count = Number((await db.query<{ n: string }>('select count(*)::text as n from tokens')).rows[0]!.n);
  const table = Number((await db.query<{ b: string }>(`select pg_table_size('tokens')::text as b`)).rows[0]!.b);
  const { rows } = await db.query<{ name: string; b: string }>(
    `select indexrelid::regclass::text as name, pg_relation_size(indexrelid)::text as b from pg_index where indrelid = 'tokens'::regclass order by 1`,
  );
  return { tokens: count, table, indexes: rows.map((row) => ({ name: row.name, bytes: Number(row.b) })) };
}
