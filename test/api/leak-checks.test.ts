/**
 * The leak checks (test/support/leaks.ts, run over the whole suite's output
 * by test/leaks/) against a real vault: silent on what a vault that handled
 * every test card wrote — timestamps, ids, hashes and ciphertexts included —
 * and loud on the card data a bug would leave in its log, its tables and its
 * data files.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, createMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { dumpTables, filesUnder, scanLog, scanRawFile, scanTableDump, withPglite, withPostgres, writtenSinceCopied, type Finding } from '../support/leaks.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { newDataDir, pgliteTemplateDir, startTestVault, storageKinds, type StorageKind, type TestVault } from '../support/vault.ts';

const { visa, mastercard, amex } = CARDS;

/**
 * Everything the leak step would report for this vault: its log, its tables and (PGlite) its raw data files
 * — those the vault wrote, as the leak step reads them (the rest are the template's, which it reads once).
 */
async function scanVault(vault: Pick<TestVault, 'logFile' | 'dataDir' | 'databaseUrl' | 'storage'>): Promise<{ log: string[]; tables: string[]; files: string[]; unread: number }> {
  const what = (findings: Finding[]) => [...new Set(findings.map((finding) => finding.what))].sort();
  const tables: Finding[] = [];
  const scanTables = async (query: (sql: string) => Promise<Record<string, unknown>[]>) => {
    for (const dump of await dumpTables(query)) tables.push(...scanTableDump('vault', dump));
  };
  if (vault.databaseUrl === undefined) await withPglite(vault.dataDir, scanTables);
  else await withPostgres(vault.databaseUrl, scanTables);
  const dataFiles = vault.storage === 'pglite' ? filesUnder(join(vault.dataDir, 'pgdata')) : [];
  const written = writtenSinceCopied(dataFiles, vault.dataDir, [pgliteTemplateDir()]);
  return { log: what(scanLog(vault.logFile, [])), tables: what(tables), files: what(written.flatMap(scanRawFile)), unread: dataFiles.length - written.length };
}

describe.each(storageKinds())('the leak checks on a real vault on %s', (storage: StorageKind) => {
  it('find nothing after every test card was tokenized and charged, then find each card number and CVC a bug would leave in the log, the tables or the data files', async () => {
    // Outside the run's artifacts (and a database not named test_…): the leak step at the end of `npm test` must not meet the plant.
    const parent = mkdtempSync(join(tmpdir(), 'tessera-planted-leak-'));
    const dataDir = await newDataDir(storage, 'planted-leak', parent);
    const databaseUrl =
      storage === 'postgres' ? await createTestDatabase(process.env['TESSERA_TEST_PG_URL']!, `planted_leak_${randomBytes(6).toString('hex')}`) : undefined;
    const vault = await startTestVault({ storage, dataDir, ...(databaseUrl === undefined ? {} : { databaseUrl }) });
    let reopened: TestVault | undefined;
    try {
      const shop = await createMerchant(vault);
      const tokens: string[] = [];
      for (const card of [visa, mastercard, amex]) {
        const created = await api(vault.url, 'POST', '/v1/tokens', { key: shop.secretKey, json: { card: await encryptCard(vault.url, cardPlaintext(card)), customer: 'cus_leak' } });
        expect(created.status).toBe(201);
        tokens.push(created.body.token);
        const paid = await api(vault.url, 'POST', '/v1/payments', {
          key: shop.secretKey,
          headers: { 'Idempotency-Key': `leak-${card.brand}` },
          json: { token: created.body.token, amount: 1000, currency: 'EUR', capture: true, reference: `order-${card.brand}` },
        });
        expect(paid.status).toBe(201);
      }
      await vault.close();
      const clean = await scanVault(vault);
      expect(clean).toMatchObject({ log: [], tables: [], files: [] });
      // Most of a data folder is the template's catalogs, left as copied.
      if (storage === 'pglite') expect(clean.unread).toBeGreaterThan(100);

      // What a bug would leave behind. The log: through the vault's own logger (which masks card numbers), and a raw write.
      reopened = await startTestVault({ storage, dataDir, ...(databaseUrl === undefined ? {} : { databaseUrl }) });
      const { log } = reopened.vault.deps;
      log.warn(`CVC ${visa.cvc} did not match`);
      log.warn({ issues: [{ code: 'custom', path: ['card', 'x'], input: amex.cvc }] }, 'request refused');
      appendFileSync(reopened.logFile, `${JSON.stringify({ body: { card: { number: mastercard.number, exp_month: 12 } } })}\n`);
      // The tables: a CVC alone in a text column, one in free text, a whole card in a stored response.
      const db = reopened.vault.db;
      await db.query('update tokens set customer = $1 where token = $2', [visa.cvc, tokens[0]]);
      await db.query('update payments set reference = $1 where token = $2', [`security code ${amex.cvc} refused`, tokens[2]]);
      await db.query('update idempotency_keys set response_body = $1 where key = $2', [
        JSON.stringify({ card: { number: mastercard.number, cvc: mastercard.cvc } }),
        'leak-mastercard',
      ]);
      await reopened.close();

      const found = await scanVault(reopened);
      expect(found.log).toEqual([`CVC ${amex.cvc}`, `CVC ${visa.cvc}`, 'card number 5555…']);
      expect(found.tables).toEqual([`CVC ${amex.cvc}`, `CVC ${visa.cvc}`, 'card number 5555…']);
      // Raw bytes have no edges around a value on its own; what stands in text is found.
      if (storage === 'pglite') expect(found.files).toEqual(expect.arrayContaining([`CVC ${amex.cvc}`, 'card number 5555…']));
    } finally {
      await vault.close();
      await reopened?.close();
      rmSync(parent, { recursive: true, force: true });
    }
  }, 60_000);
});
