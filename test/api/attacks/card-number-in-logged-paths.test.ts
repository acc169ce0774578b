import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../../support/api.ts';
import { startTestVault, type TestVault } from '../../support/vault.ts';

/**
 * Review finding: the access log writes each request's path, and the log's
 * card-number mask only matched digit runs between word boundaries, so a
 * card number glued to other characters — `GET /v1/tokens/tok_4242…`, as a
 * merchant's bug or a prober might send — reached the log in the clear.
 */
describe('a card number inside a requested path', () => {
  let vault: TestVault;
  let shop: TestMerchant;

  beforeAll(async () => {
    vault = await startTestVault({ name: 'attack-log-paths' });
    shop = await createMerchant(vault);
  });
  afterAll(() => vault?.close());

  // An id holding a card number is refused (422 card_number_not_allowed); one glued to letters, or no route at all, is 404.
  it.each([
    ['/v1/tokens/tok_4242424242424242', '4242424242424242', 422],
    ['/v1/tokens/abc4242424242424242def', '4242424242424242', 404],
    ['/v1/tokens/tok_4242-4242-4242-4242', '4242-4242-4242-4242', 422],
    ['/v1/payments/pay_5555555555554444', '5555555555554444', 422],
    ['/v1/card5555555555554444', '5555555555554444', 404],
  ])('GET %s is logged with the digits masked', async (path, digits, status) => {
    const response = await api(vault.url, 'GET', path, { key: shop.secretKey });
    expect(response.status).toBe(status);
    const log = readFileSync(vault.logFile, 'utf8');
    const line = log.split('\n').find((entry) => entry.includes(`"request_id":"${response.headers.get('request-id')}"`));
    expect(line, 'the request was logged').toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ msg: 'request', status, path: expect.stringContaining('[redacted-number]') });
    expect(log).not.toContain(digits);
    // Nor is it kept in the audit log (a failed read is recorded, without a name it cannot echo).
    const kept = await vault.vault.db.query(`select 1 from audit_events where row_to_json(audit_events)::text like $1`, [`%${digits}%`]);
    expect(kept.rowCount).toBe(0);
  });
});
