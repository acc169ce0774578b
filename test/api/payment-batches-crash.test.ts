/**
 * A vault process killed (SIGKILL) in the middle of a payment batch resumes
 * it after a restart, and no operation is done twice: each charge item makes
 * exactly one payment (its own acquirer reference, fixed at acceptance), one
 * result and one set of events; each refund item (applied a chunk per
 * transaction between the charges) one refund and one event; and the batch
 * completes once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { api, createMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard } from '../support/cards.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

/**
 * 80 charges (each its own payment) and 40 refunds: the kill after 40
 * processed lands a third of the way in, with charges and refund runs done
 * before it and both still pending after it. (200 and 100 proved no more and
 * took twice as long: a charge is a whole payment.)
 */
const ITEMS = 80;
/** A refund of one cent of the first payment (REFUNDS cents, so refunded in full at the end) after every 20th charge, in runs of 10. */
const REFUNDS = 40;
const TOTAL = ITEMS + REFUNDS;
const silent = createLogger({ level: 'silent' });

describe.each(storageKinds())('a payment batch across a kill -9 on %s', (storage) => {
  let running: VaultProcess | undefined;
  afterEach(() => running?.kill('SIGTERM'));

  it(
    'resumes after a restart and makes each operation exactly once',
    async () => {
      const dataDir = await newDataDir(storage, 'payment-batch-crash');
      const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
      const env: Record<string, string> = {
        TESSERA_JOB_LEASE_MS: '1000',
        TESSERA_JOB_POLL_MS: '100',
        // One process on PostgreSQL too: the kill must hit the process working the batch (and a worker per core would open the vault three times).
        ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl, TESSERA_WORKERS: '1' }),
      };
      running = await startVaultProcess({ dataDir, env });
      const vault = { url: running.url, adminKey: readFileSync(join(dataDir, 'admin.key'), 'utf8').trim() };
      const merchant = await createMerchant(vault, { name: 'Crash Shop' });
      const card = await encryptCard(running.url, cardPlaintext());
      const token = (await api(running.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card, reusable: true } })).body.token as string;
      // The customer's payment that stores the credential each merchant-initiated charge cites.
      const first = await api(running.url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token, amount: REFUNDS, currency: 'EUR', setup_future_usage: true } });
      expect(first.status, first.text).toBe(201);
      const charges = Array.from({ length: ITEMS }, (_, n) => ({ op: 'charge', token, amount: 100 + n, currency: 'EUR', reference: `renewal-${n}` }));
      const refunds = Array.from({ length: REFUNDS / (ITEMS / 20) }, () => ({ op: 'refund', payment: first.body.id, amount: 1 }));
      const items = charges.flatMap((charge, n) => (n % 20 === 19 ? [charge, ...refunds] : [charge]));
      const accepted = await api(running.url, 'POST', '/v1/payment-batches', { key: merchant.secretKey, json: { items } });
      expect(accepted.status, accepted.text).toBe(202);
      const id = accepted.body.id as string;

      const progress = async (url: string) => (await api(url, 'GET', `/v1/payment-batches/${id}`, { key: merchant.secretKey })).body;
      for (let seen = await progress(running.url); seen.processed < 40; seen = await progress(running.url)) await sleep(10);
      await running.kill('SIGKILL');
      expect(running.child.signalCode).toBe('SIGKILL');

      running = await startVaultProcess({ dataDir, env });
      const killedAt = await progress(running.url);
      expect(killedAt.processed).toBeLessThan(TOTAL);
      const deadline = Date.now() + 120_000;
      let batch = killedAt;
      while (batch.status !== 'completed') {
        if (Date.now() > deadline) throw new Error(`the batch did not complete after the restart (${batch.processed}/${TOTAL})`);
        await sleep(100);
        batch = await progress(running.url);
      }
      expect(batch).toMatchObject({ total: TOTAL, processed: TOTAL, succeeded: TOTAL, failed: 0 });
      await running.kill('SIGTERM');
      running = undefined;

      const db: Db = await openStorage({ dataDir, databaseUrl, log: silent });
      try {
        const one = async (sql: string, params: unknown[] = [merchant.id]) => (await db.query<Record<string, number>>(sql, params)).rows[0]!;
        expect(await one(`select count(*)::int as payments, count(distinct reference)::int as refs, sum(amount)::int as total from payments where merchant_id = $1 and id <> $2`, [merchant.id, first.body.id])).toEqual({
          payments: ITEMS,
          refs: ITEMS,
          total: charges.reduce((sum, item) => sum + item.amount, 0),
        });
        expect(
          await one(
            `select p.status, p.amount_refunded::int as refunded, (select count(*)::int from refunds r where r.merchant_id = p.merchant_id and r.payment_id = p.id) as refunds,
                    (select count(*)::int from audit_events e where e.merchant_id = p.merchant_id and e.payment_id = p.id and e.event_type = 'payment.refunded') as events
               from payments p where p.merchant_id = $1 and p.id = $2`,
            [merchant.id, first.body.id],
          ),
        ).toEqual({ status: 'refunded', refunded: REFUNDS, refunds: REFUNDS, events: REFUNDS });
        expect(
          await one(`select count(*)::int as captured, count(distinct payment_id)::int as payments from audit_events where merchant_id = $1 and event_type = 'payment.captured' and payment_id <> $2`, [merchant.id, first.body.id]),
        ).toEqual({ captured: ITEMS, payments: ITEMS });
        expect(
          await one(`select count(*)::int as items, count(distinct result_payment)::int as payments from payment_batch_items where batch_id = $1 and state = 'succeeded'`, [id]),
        ).toEqual({ items: TOTAL, payments: ITEMS + 1 });
        expect(await one(`select count(*)::int as completed from audit_events where merchant_id = $1 and event_type = 'payment_batch.completed'`)).toEqual({ completed: 1 });
      } finally {
        await db.close();
      }
    },
    240_000,
  );
});
