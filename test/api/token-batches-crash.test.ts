/**
 * A vault process killed (SIGKILL) in the middle of a token batch resumes it
 * after a restart: every item is tokenized exactly once — one token, one
 * token.created audit entry and one result per item — and none is lost.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { api, createMerchant } from '../support/api.ts';
import { cardPlaintext, numberedCard } from '../support/cards.ts';
import { encryptMany } from '../support/many.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

/**
 * Items in the batch; the kill comes once a quarter are processed. 200 are
 * still more than one of the processor's chunks (16 to 64 items) before the
 * kill and after it; 400 proved no more and took longer.
 */
const ITEMS = 200;
const silent = createLogger({ level: 'silent' });

describe.each(storageKinds())('a token batch across a kill -9 on %s', (storage) => {
  let running: VaultProcess | undefined;
  afterEach(() => running?.kill('SIGTERM'));

  it(
    'resumes after a restart and tokenizes every item exactly once',
    async () => {
      const dataDir = await newDataDir(storage, 'token-batch-crash');
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
      const jwes = await encryptMany(running.url, Array.from({ length: ITEMS }, (_, n) => cardPlaintext({ number: numberedCard('455600', n), cvc: '123' })));
      // Two items replay the first: exactly these fail, whatever the kill interrupted.
      jwes[ITEMS - 1] = jwes[0]!;
      jwes[ITEMS / 2] = jwes[0]!;
      const accepted = await api(running.url, 'POST', '/v1/token-batches', {
        key: merchant.secretKey,
        json: { correlation_id: 'crash', items: jwes.map((card, n) => ({ card, reference: `row-${n}` })) },
      });
      expect(accepted.status, accepted.text).toBe(202);
      const id = accepted.body.id as string;

      const progress = async (url: string) => (await api(url, 'GET', `/v1/token-batches/${id}`, { key: merchant.secretKey })).body;
      for (let seen = await progress(running.url); seen.processed < ITEMS / 4; seen = await progress(running.url)) await sleep(20);
      await running.kill('SIGKILL');
      expect(running.child.signalCode).toBe('SIGKILL');

      running = await startVaultProcess({ dataDir, env });
      const killedAt = await progress(running.url);
      expect(killedAt.processed).toBeGreaterThan(0);
      expect(killedAt.processed).toBeLessThan(ITEMS);
      const deadline = Date.now() + 120_000;
      let batch = killedAt;
      while (batch.status !== 'completed') {
        if (Date.now() > deadline) throw new Error(`the batch did not complete after the restart (${batch.processed}/${ITEMS})`);
        await sleep(100);
        batch = await progress(running.url);
      }
      expect(batch).toMatchObject({ total: ITEMS, processed: ITEMS, succeeded: ITEMS - 2, failed: 2 });
      await running.kill('SIGTERM');
      running = undefined;

      const db: Db = await openStorage({ dataDir, databaseUrl, log: silent });
      try {
        const one = async (sql: string) => (await db.query<Record<string, number>>(sql, [merchant.id])).rows[0]!;
        expect(await one(`select count(*)::int as tokens, count(distinct fingerprint)::int as cards from tokens where merchant_id = $1`)).toEqual({
          tokens: ITEMS - 2,
          cards: ITEMS - 2,
        });
        expect(
          await one(
            `select count(*) filter (where outcome = 'succeeded')::int as made, count(*) filter (where outcome = 'failed')::int as refused,
                    count(distinct token)::int as named
               from audit_events where merchant_id = $1 and action = 'token.created'`,
          ),
        ).toEqual({ made: ITEMS - 2, refused: 2, named: ITEMS - 2 });
        expect(
          await one(
            `select count(*)::int as items, count(*) filter (where state = 'succeeded')::int as succeeded,
                    count(distinct token)::int as tokens, count(card)::int as kept
               from token_batch_items i join token_batches b on b.id = i.batch_id where b.merchant_id = $1`,
          ),
        ).toEqual({ items: ITEMS, succeeded: ITEMS - 2, tokens: ITEMS - 2, kept: 0 });
        const failed = await db.query<{ item_index: number; error_code: string }>(
          `select item_index, error_code from token_batch_items where batch_id = $1 and state = 'failed' order by item_index`,
          [id],
        );
        expect(failed.rows).toEqual([
          { item_index: ITEMS / 2, error_code: 'replayed_ciphertext' },
          { item_index: ITEMS - 1, error_code: 'replayed_ciphertext' },
        ]);
        expect(
          await one(`select count(*)::int as completed from audit_events where merchant_id = $1 and event_type = 'token_batch.completed'`),
        ).toEqual({ completed: 1 });
      } finally {
        await db.close();
      }
    },
    240_000,
  );
});
