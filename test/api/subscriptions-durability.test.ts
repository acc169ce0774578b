/**
 * Subscription charges survive what a vault process can suffer: killed with
 * SIGKILL while it charges a clock advance's periods, every period is
 * charged once after a restart (none twice at the acquirer, none lost); and
 * two vault processes on one PostgreSQL advancing the clock at once share
 * the charges and charge each period once.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { inParallel } from '../support/many.ts';
import { savedCardWithCredential } from '../support/stored-credentials.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

const MASTER_KEY = randomBytes(32).toString('base64');
const ADMIN_KEY = `admin_${randomBytes(18).toString('hex')}`;
const START = `${new Date().getUTCFullYear() + 1}-04-01T08:00:00Z`;
const silent = createLogger({ level: 'silent' });

function logLines(dataDir: string): Record<string, unknown>[] {
  return readFileSync(join(dataDir, 'vault.log'), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
/**
 * When each batch of subscription charges was first authorized at the sandbox
 * acquirer (single setting-up payments left out, and so is a batch submitted
 * again by a worker that took over an expired claim — its authorizations were
 * made before, and may be recorded already).
 */
const madeBatches = (dataDir: string) =>
  logLines(dataDir)
    .filter((line) => line['msg'] === 'sandbox authorizations made' && Number(line['fresh']) > 1)
    .map((line) => Date.parse(String(line['time'])));
const recordedBatches = (dataDir: string) => logLines(dataDir).filter((line) => line['msg'] === 'subscription charges recorded' && Number(line['recorded']) > 0);

/** `count` subscriptions due at START, on a few saved cards with stored credentials. */
async function dueSubscriptions(url: string, shop: TestMerchant, count: number): Promise<string[]> {
  const cards = await inParallel(8, 4, () => savedCardWithCredential(url, shop));
  return inParallel(count, 8, async (i) => {
    const created = await api(url, 'POST', '/v1/subscriptions', {
      key: shop.secretKey,
      json: { token: cards[i % cards.length]!.token, amount: 1000 + i, currency: 'EUR', interval: 'month', start_at: START },
    });
    if (created.status !== 201) throw new Error(`subscribing failed: ${created.status} ${created.text}`);
    return created.body.id as string;
  });
}

/** What the database holds of the merchant's charges: per subscription, and at the acquirer. */
async function chargeCounts(db: Db, merchantId: string) {
  const { rows } = await db.query<{ subscriptions: number; once: number; charges: number; payments: number; authorizations: number; charged_events: number }>(
    `select
       (select count(*)::int from subscriptions where merchant_id = $1) as subscriptions,
       (select count(*)::int from subscriptions where merchant_id = $1 and period = 1 and status = 'active') as once,
       (select count(*)::int from subscription_charges where merchant_id = $1 and outcome = 'succeeded') as charges,
       (select count(*)::int from payments where merchant_id = $1 and subscription_id is not null and status = 'captured') as payments,
       (select count(*)::int from sandbox_acquirer_authorizations a
          where a.initiator = 'merchant' and a.reference in (select id from payments where merchant_id = $1 and subscription_id is not null)) as authorizations,
       (select count(*)::int from audit_events where merchant_id = $1 and event_type = 'subscription.charged') as charged_events`,
    [merchantId],
  );
  return rows[0]!;
}

const env = (databaseUrl: string | undefined, extra: Record<string, string> = {}) => ({
  TESSERA_MASTER_KEY: MASTER_KEY,
  TESSERA_ADMIN_KEY: ADMIN_KEY,
  // A claim whose worker died is taken over quickly.
  TESSERA_JOB_LEASE_MS: '1000',
  TESSERA_JOB_POLL_MS: '200',
  TESSERA_SUBSCRIPTION_SCAN_MS: '500',
  ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl, TESSERA_WORKERS: '1' }),
  ...extra,
});

describe.each(storageKinds())('subscription charges across a crash, on %s', (storage) => {
  const running: VaultProcess[] = [];
  afterEach(async () => {
    for (const vault of running.splice(0)) await vault.kill('SIGTERM');
  });

  it('charges every period once after the vault is killed with SIGKILL while it charges them', async () => {
    // Five claims (a claim takes 100, and a process runs 4 charge jobs at once): the fifth is made only after one
    // of the first four is recorded, which is the moment the kill waits for. Its 20 are enough for that (500 proved
    // no more; creating the subscriptions is most of this test's time).
    const SUBSCRIPTIONS = 420;
    const dataDir = await newDataDir(storage, 'subscriptions-crash');
    const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    // The acquirer's answers take 1.5 s to come back after it made the authorizations, so a kill lands while some are on their way.
    const processEnv = env(databaseUrl, { TESSERA_SANDBOX_ACQUIRER_DELAY_MS: '1500' });
    // Its starts are given longer than the usual 30 s: a busy machine slows the embedded database's first start and its recovery after the kill.
    let vault = await startVaultProcess({ dataDir, env: processEnv, startTimeoutMs: 120_000 });
    running.push(vault);
    const shop = await createMerchant({ url: vault.url, adminKey: ADMIN_KEY }, { name: 'Crash Coffee' });
    await dueSubscriptions(vault.url, shop, SUBSCRIPTIONS);

    const advancing = api(vault.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: { advance_to: START }, timeoutMs: 120_000 }).catch(() => undefined);
    // Killed once some batches are recorded and another's authorizations are made, its answers still on their way (1.5 s).
    await expect
      .poll(
        () => {
          const made = madeBatches(dataDir);
          // The newest batch's answers are due 1.5 s after it was first made: killing within 1 s of it lands before any
          // worker can record them. (Counting made against recorded lines is not enough: on a loaded machine a claim can
          // expire and be taken over, and the second worker's submission of the same batch is another "made" line.)
          return recordedBatches(dataDir).length > 0 && made.length > 0 && Date.now() - made.at(-1)! < 1000;
        },
        { timeout: 120_000, interval: 20 },
      )
      .toBe(true);
    await vault.kill('SIGKILL');
    running.pop();
    expect(vault.child.signalCode).toBe('SIGKILL');
    await advancing;

    const withDatabase = async <T>(work: (db: Db) => Promise<T>): Promise<T> => {
      const db = await openStorage({ dataDir, databaseUrl, log: silent });
      try {
        return await work(db);
      } finally {
        await db.close();
      }
    };
    // Killed mid-run: some periods were charged, and some authorizations were made whose charge was never recorded.
    const atKill = await withDatabase(async (db) => {
      const counts = await chargeCounts(db, shop.id);
      const { rows } = await db.query<{ n: number }>(
        `select count(*)::int as n from sandbox_acquirer_authorizations where initiator = 'merchant' and reference not in (select id from payments)`,
      );
      return { ...counts, unrecorded: rows[0]!.n };
    });
    expect(atKill.charges).toBeGreaterThan(0);
    expect(atKill.charges).toBeLessThan(SUBSCRIPTIONS);
    expect(atKill.unrecorded).toBeGreaterThan(0);

    vault = await startVaultProcess({ dataDir, env: processEnv, startTimeoutMs: 120_000 });
    running.push(vault);
    // The merchant sends its advance again: the clock is already there, and the answer waits for the rest.
    const again = await api(vault.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: { advance_to: START }, timeoutMs: 120_000 });
    expect(again.status, again.text).toBe(200);
    expect(again.body.status).toBe('ready');
    await vault.kill('SIGTERM');
    running.pop();

    await withDatabase(async (db) => {
      expect(await chargeCounts(db, shop.id)).toEqual({
        subscriptions: SUBSCRIPTIONS,
        once: SUBSCRIPTIONS,
        charges: SUBSCRIPTIONS,
        payments: SUBSCRIPTIONS,
        authorizations: SUBSCRIPTIONS,
        charged_events: SUBSCRIPTIONS,
      });
      // The authorizations the dead vault made were recorded as they were made, not made again.
      const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from sandbox_acquirer_authorizations where initiator = 'merchant'`);
      expect(rows[0]!.n).toBe(SUBSCRIPTIONS);
    });
  }, 300_000);

});

// PostgreSQL only: the embedded database has one owner process.
describe.each(storageKinds().filter((kind) => kind === 'postgres'))('subscription charges from two vault processes, on %s', (storage) => {
  const running: VaultProcess[] = [];
  afterEach(async () => {
    for (const vault of running.splice(0)) await vault.kill('SIGTERM');
  });

  it('charges each period once when two vault processes on one PostgreSQL advance the clock at once, both doing part of it', async () => {
    const SUBSCRIPTIONS = 500;
    const databaseUrl = await newTestDatabase();
    const processEnv = env(databaseUrl, { TESSERA_SANDBOX_ACQUIRER_DELAY_MS: '5' });
    const dirs = [await newDataDir(storage, 'subscriptions-node-a'), await newDataDir(storage, 'subscriptions-node-b')];
    const nodes = [await startVaultProcess({ dataDir: dirs[0]!, env: processEnv }), await startVaultProcess({ dataDir: dirs[1]!, env: processEnv })];
    running.push(...nodes);
    const shop = await createMerchant({ url: nodes[0]!.url, adminKey: ADMIN_KEY }, { name: 'Two Node Coffee' });
    await dueSubscriptions(nodes[1]!.url, shop, SUBSCRIPTIONS);

    const answers = await Promise.all(nodes.map((node) => api(node.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: { advance_to: START }, timeoutMs: 120_000 })));
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.status).toBe('ready');
    }
    expect(answers.map((answer) => answer.body.charges)).toContainEqual({ succeeded: SUBSCRIPTIONS, failed: 0 });
    // Both nodes recorded charges.
    for (const dir of dirs) expect(recordedBatches(dir).length).toBeGreaterThan(0);

    const db = await openStorage({ dataDir: dirs[0]!, databaseUrl, log: silent });
    try {
      expect(await chargeCounts(db, shop.id)).toEqual({
        subscriptions: SUBSCRIPTIONS,
        once: SUBSCRIPTIONS,
        charges: SUBSCRIPTIONS,
        payments: SUBSCRIPTIONS,
        authorizations: SUBSCRIPTIONS,
        charged_events: SUBSCRIPTIONS,
      });
    } finally {
      await db.close();
    }
  }, 180_000);
});
