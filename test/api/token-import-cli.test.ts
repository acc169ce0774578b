/**
 * `npm run tessera -- tokens import cards.csv` against a real vault process:
 * rows encrypted on the merchant's side, sent as token batches, and a results
 * CSV mapping each row to its token or its error — with no card data in it
 * or in what the command prints.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { nodeArgs, startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const YEAR = new Date().getUTCFullYear() + 2;

/** Runs the CLI to its end; never rejects (the exit code is part of what is tested). */
async function tessera(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const node = await nodeArgs('server/cli.ts');
  return new Promise((resolve) => {
    execFile(process.execPath, [...node, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr }),
    );
  });
}

describe.each(storageKinds())('tessera tokens import on %s', (storage) => {
  let vault: VaultProcess;
  let merchant: TestMerchant;
  // Not under the test artifacts: the input file holds card numbers in clear, as a merchant's would.
  const work = mkdtempSync(join(tmpdir(), 'tessera-import-'));

  beforeAll(async () => {
    const dataDir = await newDataDir(storage, 'token-import');
    const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    // One process on PostgreSQL: this tests the CLI, not the vault's workers (a worker per core would open the vault three times).
    vault = await startVaultProcess({ dataDir, env: databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl, TESSERA_WORKERS: '1' } });
    merchant = await createMerchant({ url: vault.url, adminKey: readFileSync(join(dataDir, 'admin.key'), 'utf8').trim() }, { name: 'Import Shop' });
    writeFileSync(join(work, 'secret-key'), `${merchant.secretKey}\n`, { mode: 0o600 });
  }, 60_000);
  afterAll(async () => {
    await vault?.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  });

  it('imports a CSV in batches, shows progress and writes a results CSV of tokens and errors, without card data', async () => {
    const input = join(work, 'cards.csv');
    writeFileSync(
      input,
      [
        'number,exp_month,exp_year,cvc,name,postal_code,reference,customer,reusable,decline_duplicates',
        `4242 4242 4242 4242,12,${YEAR},,Ada Lovelace,SW1A 1AA,crm-1001,cus_1001,true,false`,
        `5555555555554444,6,${YEAR},,,,crm-1002,cus_1002,,`,
        `4242 4242 4242 4241,12,${YEAR},,,,crm-1003,,,`,
        `378282246310005,9,${YEAR},,,,crm-1004,,false,`,
        `4000000000000002,1,2021,,,,crm-1005,,,`,
        `6011111111111117,xx,${YEAR},,,,crm-1006,,,`,
        `4000000000009995,3,${YEAR},,"Somerville, Mary",,"crm-1007, ""quoted""",,,`,
      ].join('\n'),
    );
    const out = join(work, 'results.csv');
    const run = await tessera(['tokens', 'import', input, '--url', vault.url, '--correlation-id', 'import-test', '--secret-key-file', join(work, 'secret-key'), '--out', out, '--batch-size', '2']);
    expect(run.stderr).toContain('4 rows tokenized, 3 failed');
    expect(run.code).toBe(3);

    const text = readFileSync(out, 'utf8');
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual(['row', 'reference', 'status', 'token', 'brand', 'last4', 'exp_month', 'exp_year', 'error_code', 'error_message']);
    expect(rows.map((r) => [r['row'], r['reference'], r['status'], r['error_code']])).toEqual([
      ['1', 'crm-1001', 'ok', ''],
      ['2', 'crm-1002', 'ok', ''],
      ['3', 'crm-1003', 'failed', 'invalid_card_number'],
      ['4', 'crm-1004', 'ok', ''],
      ['5', 'crm-1005', 'failed', 'card_expired'],
      ['6', 'crm-1006', 'failed', 'invalid_expiry'],
      ['7', 'crm-1007, "quoted"', 'ok', ''],
    ]);
    expect(rows[0]).toMatchObject({ brand: 'visa', last4: '4242', exp_month: '12', exp_year: String(YEAR) });
    for (const row of rows.filter((r) => r['status'] === 'failed')) expect(row['error_message']).not.toBe('');

    const saved = await api(vault.url, 'GET', `/v1/tokens/${rows[0]!['token']}`, { key: merchant.secretKey });
    expect(saved.body).toMatchObject({ reusable: true, customer: 'cus_1001', card: { last4: '4242', name: 'Ada Lovelace' } });
    const single = await api(vault.url, 'GET', `/v1/tokens/${rows[3]!['token']}`, { key: merchant.secretKey });
    expect(single.body).toMatchObject({ reusable: false, card: { brand: 'american-express' } });

    for (const number of ['4242424242424242', '4242 4242 4242 4242', '5555555555554444', '378282246310005', '4000000000009995', '6011111111111117']) {
      expect(text).not.toContain(number);
      expect(run.stdout + run.stderr).not.toContain(number);
    }
    // The six rows that could be sent went as three batches of two (--batch-size).
    const events = await api(vault.url, 'GET', '/v1/events?limit=50', { key: merchant.secretKey });
    expect(events.body.data.filter((e: { action: string }) => e.action === 'token_batch.created')).toHaveLength(3);
  }, 120_000);

  it('takes the secret key only from a file or the environment', async () => {
    const input = join(work, 'one.csv');
    writeFileSync(input, `number,exp_month,exp_year,reference\n5555555555554444,1,${YEAR},env-1\n`);
    const without = await tessera(['tokens', 'import', input, '--url', vault.url]);
    expect({ code: without.code, says: without.stderr.includes('--secret-key-file <path> or TESSERA_SECRET_KEY') }).toEqual({ code: 2, says: true });
    const asArgument = await tessera(['tokens', 'import', input, '--url', vault.url, '--secret-key', merchant.secretKey]);
    expect(asArgument.code).not.toBe(0);
    expect(asArgument.stderr).not.toContain(merchant.secretKey);
    const fromEnv = await tessera(['tokens', 'import', input, '--url', vault.url], { TESSERA_SECRET_KEY: merchant.secretKey });
    expect(fromEnv.stderr).toContain('1 rows tokenized, 0 failed');
    expect(fromEnv.code).toBe(0);
    expect(readFileSync(join(work, 'one.results.csv'), 'utf8')).toContain('env-1,ok,tok_');
  }, 60_000);

  it('refuses a file with an unknown column before sending anything', async () => {
    const input = join(work, 'typo.csv');
    writeFileSync(input, `number,exp_month,exp_yr\n5555555555554444,1,${YEAR}\n`);
    const run = await tessera(['tokens', 'import', input, '--url', vault.url, '--secret-key-file', join(work, 'secret-key')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('unknown column exp_yr');
  }, 60_000);

  it('asks for a network token for each reusable token with --network-tokens', async () => {
    const input = join(work, 'network-tokens.csv');
    writeFileSync(input, `number,exp_month,exp_year,reference,reusable\n5555555555554444,1,${YEAR},nt-1,\n4242424242424242,2,${YEAR},nt-2,false\n`);
    const out = join(work, 'network-tokens.results.csv');
    const run = await tessera(['tokens', 'import', input, '--url', vault.url, '--secret-key-file', join(work, 'secret-key'), '--out', out, '--network-tokens']);
    expect(run.code, run.stderr).toBe(0);
    const [saved] = parse(readFileSync(out, 'utf8'), { columns: true }) as { token: string }[];
    const read = await api(vault.url, 'GET', `/v1/tokens/${saved!.token}`, { key: merchant.secretKey });
    expect(read.body.network_token).toMatchObject({ network: 'mastercard', status: expect.stringMatching(/^(pending|active)$/) });
  }, 60_000);

  it('names the row when the vault refuses a batch for one of its references', async () => {
    const input = join(work, 'pan-in-reference.csv');
    writeFileSync(input, `number,exp_month,exp_year,reference\n5555555555554444,1,${YEAR},ok-1\n5555555555554444,2,${YEAR},card 4242 4242 4242 4242\n`);
    const run = await tessera(['tokens', 'import', input, '--url', vault.url, '--secret-key-file', join(work, 'secret-key')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('row 2, reference: the vault answered 422 card_number_not_allowed');
    expect(run.stderr).not.toContain('4242');
  }, 60_000);
});
