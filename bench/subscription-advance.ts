/**
 * One run of the subscription benchmark: vault processes (as `npm run
 * vault` starts them) with `subscriptions` subscriptions all due at one
 * moment, and a single `POST /v1/sandbox/clock` that has them all charged.
 * Times the advance (request to answer), reads from each process's log how
 * many charges it recorded, and checks in the database that no period was
 * charged twice and none was missed. Used by `npm run bench:subscriptions`
 * and, with 120 subscriptions, by its test.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../server/log.ts';
import { openStorage } from '../server/storage/open.ts';
import { api, createMerchant } from '../test/support/api.ts';
import { inParallel } from '../test/support/many.ts';
import { savedCardWithCredential } from '../test/support/stored-credentials.ts';
import { startVaultProcess, type VaultProcess } from '../test/support/vault-process.ts';
import { newDataDir, type StorageKind } from '../test/support/vault.ts';

export interface AdvanceRun {
  storage: StorageKind;
  /** Vault processes sharing the work (more than one needs PostgreSQL). */
  nodes: number;
  subscriptions: number;
  /** A PostgreSQL database of its own for this run. */
  databaseUrl?: string;
  /** Saved cards the subscriptions are spread over. */
  cards?: number;
}

export interface AdvanceResult {
  storage: StorageKind;
  nodes: number;
  subscriptions: number;
  setupSeconds: number;
  /** From the advance's request to its answer, every charge recorded. */
  advanceSeconds: number;
  /** Charges each process recorded, from its log. */
  perNode: number[];
  /** What the database holds afterwards. */
  check: { charged: number; payments: number; authorizations: number; periodsChargedTwice: number; periodsMissed: number };
}

const START = `${new Date().getUTCFullYear() + 1}-01-31T09:00:00Z`;

const recordedIn = (dataDir: string): number =>
  readFileSync(join(dataDir, 'vault.log'), 'utf8')
    .split('\n')
    .filter((line) => line.includes('"subscription charges recorded"'))
    .reduce((sum, line) => sum + Number((JSON.parse(line) as { recorded: number }).recorded), 0);

export async function benchAdvance(run: AdvanceRun): Promise<AdvanceResult> {
  if (run.nodes > 1 && run.databaseUrl === undefined) throw new Error('several vault processes need PostgreSQL');
  const adminKey = `admin_${randomBytes(18).toString('hex')}`;
  const env: Record<string, string> = {
    TESSERA_MASTER_KEY: randomBytes(32).toString('base64'),
    TESSERA_ADMIN_KEY: adminKey,
    // Only the advance charges anything here: real time's scan stays out of the way.
    TESSERA_SUBSCRIPTION_SCAN_MS: '3600000',
    TESSERA_LOG_LEVEL: 'info',
    ...(run.databaseUrl === undefined ? {} : { DATABASE_URL: run.databaseUrl, TESSERA_WORKERS: '1' }),
  };
  const dataDirs: string[] = [];
  const nodes: VaultProcess[] = [];
  try {
    for (let i = 0; i < run.nodes; i++) {
      dataDirs.push(await newDataDir(run.storage, `bench-subscriptions-${i}`));
      // A busy machine slows the embedded database's first start past the usual 30 s.
      nodes.push(await startVaultProcess({ dataDir: dataDirs[i]!, env, startTimeoutMs: 120_000 }));
    }
    const setupStarted = performance.now();
    const shop = await createMerchant({ url: nodes[0]!.url, adminKey }, { name: 'Bench Coffee' });
    const cards = await inParallel(run.cards ?? 50, 8, () => savedCardWithCredential(nodes[0]!.url, shop));
    await inParallel(run.subscriptions, 16, async (i) => {
      const created = await api(nodes[i % nodes.length]!.url, 'POST', '/v1/subscriptions', {
        key: shop.secretKey,
        json: { token: cards[i % cards.length]!.token, amount: 900 + (i % 100), currency: 'EUR', interval: 'month', start_at: START, reference: `bench-${i}` },
      });
      if (created.status !== 201) throw new Error(`subscribing failed: ${created.status} ${created.text}`);
    });
    const setupSeconds = (performance.now() - setupStarted) / 1000;

    const started = performance.now();
    const advanced = await api(nodes[0]!.url, 'POST', '/v1/sandbox/clock', { key: shop.secretKey, json: { advance_to: START }, timeoutMs: 600_000 });
    const advanceSeconds = (performance.now() - started) / 1000;
    if (advanced.status !== 200 || advanced.body.status !== 'ready') throw new Error(`the advance failed: ${advanced.status} ${advanced.text}`);
    // Stopped, the processes have written their last log lines, and the embedded database (one owner) can be read.
    for (const node of nodes.splice(0)) await node.kill('SIGTERM');
    const perNode = dataDirs.map(recordedIn);
    const db = await openStorage({ dataDir: dataDirs[0]!, databaseUrl: run.databaseUrl, log: createLogger({ level: 'silent' }) });
    try {
      const { rows } = await db.query<AdvanceResult['check']>(
        `select
           (select count(*)::int from subscription_charges where merchant_id = $1 and outcome = 'succeeded') as charged,
           (select count(*)::int from payments where merchant_id = $1 and subscription_id is not null and status = 'captured') as payments,
           (select count(*)::int from sandbox_acquirer_authorizations where initiator = 'merchant') as authorizations,
           (select count(*)::int from (select subscription_id from payments where merchant_id = $1 and subscription_id is not null
                                         group by subscription_id having count(*) > 1) twice) as "periodsChargedTwice",
           (select count(*)::int from subscriptions where merchant_id = $1 and period <> 1) as "periodsMissed"`,
        [shop.id],
      );
      return { storage: run.storage, nodes: run.nodes, subscriptions: run.subscriptions, setupSeconds, advanceSeconds, perNode, check: rows[0]! };
    } finally {
      await db.close();
    }
  } finally {
    for (const node of nodes) await node.kill('SIGTERM');
  }
}

/** Whether a run charged every period once: what the benchmark and its test both require. */
export function chargedEachPeriodOnce(result: AdvanceResult): boolean {
  const { check, subscriptions } = result;
  return (
    check.charged === subscriptions &&
    check.payments === subscriptions &&
    check.authorizations === subscriptions &&
    check.periodsChargedTwice === 0 &&
    check.periodsMissed === 0 &&
    result.perNode.reduce((a, b) => a + b, 0) === subscriptions
  );
}
