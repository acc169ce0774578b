/**
 * `npm run tessera -- payments batch ops.csv`: the CSV sent as one payment
 * batch, progress on stderr, a results CSV per operation, exit 3 when some
 * failed; a malformed file stops it with the vault's line and column.
 * (The storage is the vault's business: the batch itself is tested on both
 * in payment-batches.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard } from '../support/cards.ts';
import { startTestVault, type TestVault } from '../support/vault.ts';
import { nodeArgs } from '../support/vault-process.ts';

const ROOT = join(import.meta.dirname, '..', '..');

async function tessera(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const node = await nodeArgs('server/cli.ts');
  return new Promise((resolve) => {
    execFile(process.execPath, [...node, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr }),
    );
  });
}

describe('tessera payments batch', () => {
  let vault: TestVault;
  let merchant: TestMerchant;
  const work = mkdtempSync(join(tmpdir(), 'tessera-payments-batch-'));

  beforeAll(async () => {
    vault = await startTestVault({ name: 'payments-batch-cli' });
    merchant = await createMerchant(vault, { name: 'Batch CLI Shop' });
  }, 60_000);
  afterAll(async () => {
    await vault?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const env = () => ({ TESSERA_SECRET_KEY: merchant.secretKey, TESSERA_URL: vault.url });

  it('sends a CSV of operations, shows progress and writes a results CSV; some failed, so it exits with 3', async () => {
    const card = await encryptCard(vault.url, cardPlaintext());
    const token = (await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card, reusable: true } })).body.token;
    const authorized = async () => (await api(vault.url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token, amount: 1500, currency: 'EUR', capture: false } })).body.id;
    const [first, second] = [await authorized(), await authorized()];
    const input = join(work, 'ops.csv');
    writeFileSync(input, ['op,payment,token,amount,currency,reference', `capture,${first},,,,order-1`, `void,${second},,,,order-2`, `capture,${second},,,,order-2b`].join('\n'));

    const run = await tessera(['payments', 'batch', input], env());
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toContain('3/3 operations processed');
    expect(run.stderr).toContain(`2 operations done, 1 failed; results in ${join(work, 'ops.results.csv')}`);
    const rows = parse(readFileSync(join(work, 'ops.results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r['row'], r['op'], r['reference'], r['status'], r['payment_status'], r['error_code']])).toEqual([
      ['1', 'capture', 'order-1', 'ok', 'captured', ''],
      ['2', 'void', 'order-2', 'ok', 'voided', ''],
      ['3', 'capture', 'order-2b', 'failed', '', 'payment_not_capturable'],
    ]);
  });

  it('stops on a malformed file with the line and column the vault names, sending nothing more', async () => {
    const input = join(work, 'bad.csv');
    writeFileSync(input, 'op,payment,amount\ncapture,pay_a,100\ncapture,pay_b,ten\n');
    const run = await tessera(['payments', 'batch', input], env());
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Line 3, column 3');
  });
});
