import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp, type VaultDeps } from './app.ts';
import { AuditLog } from './audit/audit.ts';
import type { VaultConfig } from './config.ts';
import { loadWidgetAssets, type WidgetAssets } from './fields/assets.ts';
import { IdempotencyStore } from './idempotency/idempotency.ts';
import { loadAdminKey } from './keys/admin-key.ts';
import { MasterKey } from './keys/master-key.ts';
import { MerchantKeys } from './keys/merchant-keys.ts';
import { masterKeyResponseSeal } from './keys/response-seal.ts';
import { TransportKeyring } from './keys/transport-keys.ts';
import { startMaintenance } from './maintenance.ts';
import { ensureDemoMerchant } from './merchants/demo.ts';
import { MerchantDirectory } from './merchants/service.ts';
import { SandboxAcquirer } from './payments/sandbox-acquirer.ts';
import { FieldsSessions } from './sessions/service.ts';
import type { Db } from './storage/db.ts';
import { openStorage } from './storage/open.ts';
import { TokenVault } from './tokens/service.ts';

export interface Vault {
  app: Express;
  db: Db;
  deps: VaultDeps;
  close(): Promise<void>;
}

export const DEFAULT_DIST_DIR = join(import.meta.dirname, '..', 'dist');

/** Opens storage and keys, creates the demo merchant on an empty store, and builds the app. */
export async function openVault(
  config: VaultConfig,
  options: { log: Logger; widget?: WidgetAssets; maintenance?: boolean },
): Promise<Vault> {
  const { log } = options;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const master = MasterKey.load({ base64: config.masterKey, dataDir: config.dataDir, log });
  const adminKey = loadAdminKey({ fromEnv: config.adminKey, dataDir: config.dataDir, log });
  const db = await openStorage({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
  try {
    const keyring = await TransportKeyring.open(db, master, log);
    const merchantKeys = new MerchantKeys(master);
    await ensureDemoMerchant(new MerchantDirectory(db, merchantKeys), config.dataDir, log);

    const deps: VaultDeps = {
      db,
      log,
      keyring,
      merchantKeys,
      acquirer: new SandboxAcquirer(db),
      adminKey,
      responseSeal: masterKeyResponseSeal(master),
      ciphertextPolicy: config.jwe,
      rateLimits: config.rateLimits,
      keyGraceSeconds: config.keyGraceSeconds,
      widget: options.widget ?? loadWidgetAssets(DEFAULT_DIST_DIR),
    };
    const stopMaintenance =
      options.maintenance === false
        ? () => undefined
        : startMaintenance(
            {
              keyring,
              tokens: new TokenVault({ ...deps, audit: new AuditLog(db) }),
              sessions: new FieldsSessions(db),
              idempotency: new IdempotencyStore(db),
              audit: new AuditLog(db),
            },
            log,
          );
    return {
      app: createApp(deps),
      db,
      deps,
      async close() {
        stopMaintenance();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
