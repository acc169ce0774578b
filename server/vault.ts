import { join } from 'node:path';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { SandboxAcquirer } from './acquirer/sandbox-acquirer.ts';
import { createApp, type VaultDeps } from './app.ts';
import { AuditLog } from './audit/audit.ts';
import type { VaultConfig } from './config.ts';
import { loadWidgetAssets, type WidgetAssets } from './fields/assets.ts';
import { IdempotencyStore } from './idempotency/idempotency.ts';
import { JobRunner } from './jobs/index.ts';
import { SubscriptionCharger } from './subscriptions/charger.ts';
import { chargeJob, ensureScan, scanJob } from './subscriptions/jobs.ts';
import { deliveryJob } from './webhooks/deliveries.ts';
import { CardDecryptPool } from './keys/card-decrypt-pool.ts';
import { RequestsInFlight } from './http/in-flight.ts';
import { tokenBatchJob } from './token-batches/processor.ts';
import { networkDeleteJob, provisionJob } from './network-tokens/job.ts';
import { completeTokenBatchIfSettled } from './token-batches/complete.ts';
import { sandboxTokenServices } from './network-tokens/sandbox.ts';
import { NetworkTokens } from './network-tokens/service.ts';
import { paymentLinkExpiryJob } from './payment-links/service.ts';
import { paymentBatchJob } from './payment-batches/processor.ts';
import { PaymentService } from './payments/service.ts';
import { WebhookEndpoints } from './webhooks/endpoints.ts';
import { WebhookSender } from './webhooks/sender.ts';
import { loadAdminKey } from './keys/admin-key.ts';
import { CardSealer } from './keys/card-keys.ts';
import { CvcKeys } from './keys/cvc-keys.ts';
import { DataKeyRotation } from './keys/data-key-rotation.ts';
import { MasterKey } from './keys/master-key.ts';
import { MasterKeyRewrap } from './keys/master-key-rewrap.ts';
import { MerchantKeys } from './keys/merchant-keys.ts';
import { masterKeyResponseSeal } from './keys/response-seal.ts';
import { TransportKeyring } from './keys/transport-keys.ts';
import { startMaintenance } from './maintenance.ts';
import { ensureDemoMerchant, refuseDemoMerchant } from './merchants/demo.ts';
import { MerchantDirectory } from './merchants/service.ts';
import { FieldsSessions } from './sessions/service.ts';
import { secureDataFolder } from './storage/data-folder.ts';
import type { Db } from './storage/db.ts';
import { ProcessLiveness } from './storage/liveness.ts';
import { openStorage } from './storage/open.ts';
import { DeclineVelocity } from './velocity/declines.ts';
import { TokenStatements } from './tokens/statements.ts';

export interface Vault {
  app: Express;
  db: Db;
  deps: VaultDeps;
  /** Runs this process's background jobs; register a kind's handler on it. */
  jobs: JobRunner;
  /** Runs one housekeeping round now (the timer runs them every `maintenanceSeconds`). */
  maintain(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_DIST_DIR = join(import.meta.dirname, '..', 'dist');

/** Opens storage and keys, creates the demo merchant on an empty store (refuses one in production), and builds the app. */
export async function openVault(
  config: VaultConfig,
  options: { log: Logger; widget?: WidgetAssets; maintenance?: boolean; jobs?: boolean },
): Promise<Vault> {
  const { log } = options;
  secureDataFolder(config.dataDir, log);
  const master = MasterKey.load({ base64: config.masterKey, previous: config.previousMasterKeys, dataDir: config.dataDir, log });
  const adminKey = loadAdminKey({ fromEnv: config.adminKey, dataDir: config.dataDir, log });
  const db = await openStorage({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
  try {
    const keyring = await TransportKeyring.open(db, master, log);
    const merchantKeys = new MerchantKeys(master, db);
    const merchants = new MerchantDirectory(db, merchantKeys);
    if (config.production) await refuseDemoMerchant(merchants, config.dataDir);
    else await ensureDemoMerchant(merchants, config.dataDir, log);
    const liveness = await ProcessLiveness.start(db, log);
    const cards = new CardSealer(merchantKeys);
    const cvcs = new CvcKeys(db, master, config.cvc);
    const declines = new DeclineVelocity(config.declines);

    const traffic = new RequestsInFlight();
    // Every provisioning statement (claim, rows, the sandbox networks', who live in the vault's database, settlement)
    // waits a little for this process's requests in flight: on PGlite the one database thread is theirs first; on
    // PostgreSQL the cores the cluster and this process share (measured: docs/benchmarks.md, "Network tokens").
    const yieldToRequests = () => traffic.whenIdle();
    const sandboxTsp = sandboxTokenServices(db, config.sandboxTspDelayMs, { before: yieldToRequests });
    const networkTokens = new NetworkTokens({
      db,
      log,
      cards,
      merchants,
      audit: new AuditLog(db),
      services: sandboxTsp,
      sandbox: sandboxTsp,
      onBatchSettled: (tx, batchId) => completeTokenBatchIfSettled(tx, new AuditLog(db), batchId),
      yieldToRequests,
      background: config.networkTokenBackground,
    });
    const decryptPool = new CardDecryptPool({ threads: config.decryptThreads, log, throttled: () => traffic.busy });
    const deps: VaultDeps = {
      db,
      log,
      keyring,
      merchantKeys,
      cards,
      cvcs,
      declines,
      // Under load, tokenize statements go in groups: each statement's fixed cost paid once a group (docs/benchmarks.md).
      tokenStatements: new TokenStatements(db),
      dataKeyRotation: new DataKeyRotation({ db, merchants, cards, merchantKeys, log }),
      masterKeyRewrap: new MasterKeyRewrap({ db, master, log }),
      acquirer: new SandboxAcquirer(db, { delayMs: config.sandbox.acquirerDelayMs, log }),
      adminKey,
      responseSeal: masterKeyResponseSeal(master),
      ciphertextPolicy: config.jwe,
      rateLimits: config.rateLimits,
      trustProxy: config.trustProxy,
      processId: liveness.id,
      keyGraceSeconds: config.keyGraceSeconds,
      widget: options.widget ?? loadWidgetAssets(DEFAULT_DIST_DIR),
      webhooks: { endpoints: new WebhookEndpoints(db, master), allowLocal: config.webhooks.allowLocal },
      requestsInFlight: traffic,
      networkTokens,
      publicOrigin: config.publicOrigin,
    };
    const sender = new WebhookSender({ allowLocal: config.webhooks.allowLocal });
    const jobs = new JobRunner({ db, log, ...config.jobs });
    jobs.register(deliveryJob({ db, endpoints: deps.webhooks.endpoints, sender, retrySchedule: config.webhooks.retrySchedule, log }));
    const audit = new AuditLog(db);
    const retrySchedule = config.networkTokenRetryScheduleMs;
    jobs.register(
      provisionJob(networkTokens, {
        backoff: retrySchedule === undefined ? undefined : (attempt) => retrySchedule[attempt - 1] ?? retrySchedule.at(-1)!,
        beforeClaim: yieldToRequests,
        concurrency: config.networkTokenBackground.concurrency,
      }),
    );
    jobs.register(networkDeleteJob(networkTokens));
    jobs.register(tokenBatchJob({ db, log, cards: { ...deps, audit }, merchants, pool: decryptPool, audit, traffic }));
    jobs.register(paymentLinkExpiryJob({ db, audit }));
    jobs.register(paymentBatchJob({ db, log, payments: new PaymentService({ ...deps, audit }), merchants, audit, acquirer: deps.acquirer, traffic }));
    const charger = new SubscriptionCharger({ db, acquirer: deps.acquirer, cards, merchants, audit, log, leaseMs: config.jobs.leaseMs });
    jobs.register(chargeJob(charger));
    jobs.register(scanJob({ db, scanMs: config.subscriptions.scanMs, charger }));
    if (options.jobs !== false) {
      await ensureScan(db, config.subscriptions.scanMs);
      await jobs.start();
    }
    const maintenance = startMaintenance(
      {
        db,
        keyring,
        cvcs,
        declines,
        sessions: new FieldsSessions(db),
        idempotency: new IdempotencyStore(db),
        dataKeyRotation: deps.dataKeyRotation,
        audit,
      },
      log,
      { intervalMs: config.maintenanceSeconds * 1000, timer: options.maintenance !== false },
    );
    return {
      app: createApp(deps),
      db,
      deps,
      jobs,
      maintain: maintenance.runOnce,
      async close() {
        maintenance.stop();
        await jobs.stop();
        // Background network tokens still in memory become jobs (after the runner stopped: for the next process, or another).
        await networkTokens.close();
        await decryptPool.close();
        sender.close();
        await liveness.stop();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
