import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, createMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, nextYear } from '../support/cards.ts';
import { withPglite, withPostgres } from '../support/leaks.ts';
import { createTokens, encryptMany } from '../support/many.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

/**
 * Items in the update; the kill comes once 20 are applied, each in a
 * statement of its own, so most are still to do after it (28 to 44 were
 * applied by the kill in the runs that chose this). 150 take half as long
 * as the 300 before, which proved no more.
 */
const ITEMS = 150;

describe.each(storageKinds())('a bulk update cut short by a crash, on %s', (storage) => {
  let running: VaultProcess | undefined;
  afterEach(() => running?.kill('SIGTERM'));

  it(
    'is finished by a retry with the same Idempotency-Key, which applies only the items the first attempt did not',
    async () => {
      const dataDir = await newDataDir(storage, 'bulk-resume');
      const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
      const env: Record<string, string> = databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl, TESSERA_WORKERS: '1' };
      /** The vault's database, read and written directly while no vault runs on it (PGlite has one owner). */
      const database = <T>(work: (query: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>) =>
        databaseUrl === undefined ? withPglite(dataDir, work) : withPostgres(databaseUrl, work);

      running = await startVaultProcess({ dataDir, env });
      const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
      const shop = await createMerchant({ url: running.url, adminKey });
      const tokens = await createTokens(running.url, shop, ITEMS);
      const jwes = await encryptMany(running.url, tokens.map(() => cardPlaintext(CARDS.visa, { exp_month: 7, exp_year: nextYear() + 4 })));
      const json = { tokens: tokens.map((t, i) => ({ token: t.token, card: jwes[i] })) };
      const headers = { 'Idempotency-Key': 'resume-after-crash' };

      // The first attempt dies (SIGKILL) once some of its items are applied, before it can answer.
      const url = running.url;
      const firstAttempt = api(url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json, headers }).catch((error: unknown) => error);
      await vi.waitFor(
        async () => {
          const page = await api(url, 'GET', '/v1/events?limit=30', { key: shop.secretKey });
          expect(page.body.data.filter((e: { action: string }) => e.action === 'token.updated').length, 'items applied so far').toBeGreaterThanOrEqual(20);
        },
        { timeout: 20_000, interval: 10 },
      );
      await running.kill('SIGKILL');
      expect(await firstAttempt).toBeInstanceOf(Error);

      const appliedBeforeCrash = await database(async (query) => {
        const [row] = await query(`select count(*)::int as n from idempotency_bulk_items where key = 'resume-after-crash' and token_record is not null`);
        // What 60 seconds of waiting would do: the claim of the dead process becomes abandoned and may be taken over.
        await query(`update idempotency_keys set locked_at = now() - interval '2 minutes' where key = 'resume-after-crash'`);
        return Number(row!['n']);
      });
      expect(appliedBeforeCrash).toBeGreaterThanOrEqual(20);
      expect(appliedBeforeCrash).toBeLessThan(ITEMS);

      running = await startVaultProcess({ dataDir, env });
      const retry = await api(running.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json, headers });
      expect(retry.status).toBe(200);
      expect(retry.body.status).toBe('SUCCESS');
      expect(retry.body.results.map((r: { token: string }) => r.token)).toEqual(tokens.map((t) => t.token));
      for (const result of retry.body.results) expect(result.object.card).toMatchObject({ exp_month: 7, exp_year: nextYear() + 4 });
      const again = await api(running.url, 'PATCH', '/v1/tokens', { key: shop.secretKey, json, headers });
      expect(again.text).toBe(retry.text);
      await running.kill('SIGTERM');
      running = undefined;

      // Every token updated exactly once across both attempts, and nothing of the bookkeeping left behind.
      await database(async (query) => {
        const updates = await query(
          `select token, count(*)::int as n from audit_events
            where merchant_id = '${shop.id}' and action = 'token.updated' and outcome = 'succeeded' group by token`,
        );
        expect(updates).toHaveLength(ITEMS);
        expect(updates.filter((row) => row['n'] !== 1)).toEqual([]);
        expect(await query('select * from idempotency_bulk_items')).toEqual([]);
      });
    },
    180_000,
  );
});
