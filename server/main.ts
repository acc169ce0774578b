import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { loadConfig, type VaultConfig } from './config.ts';
import { createVaultServer } from './http/server.ts';
import { createLogger, type Logger } from './log.ts';
import { optimizePgliteFromTheStart } from './storage/pglite-compiler.ts';
import { openVault } from './vault.ts';

/**
 * `npm run vault`: the vault, listening until SIGINT/SIGTERM. On PostgreSQL
 * it runs one process per core (`TESSERA_WORKERS`) sharing the port; the
 * primary prepares storage and keys once, then forks.
 */
// What the vault and its embedded database create (keys, database files) is their owner's alone.
process.umask(0o077);
const config = configOrExit();
const log = createLogger({ level: config.logLevel });
// PGlite's WebAssembly compiled optimized as it opens (see pglite-compiler.ts); PostgreSQL has none.
if (config.databaseUrl === undefined) optimizePgliteFromTheStart();

/** The configuration, or exit 1 with a message naming each variable that is wrong or missing. */
function configOrExit(): VaultConfig {
  try {
    return loadConfig();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}

/** Replacement workers allowed per minute before the primary gives up and exits. */
const MAX_RESTARTS_PER_MINUTE = 5;

async function serve(config: VaultConfig, log: Logger): Promise<void> {
  const vault = await openVault(config, { log });
  const server = createVaultServer(vault.app, config.http).listen(config.port, config.host, () => {
    const { port } = server.address() as AddressInfo;
    log.info({ url: `http://localhost:${port}`, storage: vault.db.kind, data_dir: config.dataDir, pid: process.pid }, 'vault listening');
  });
  server.on('error', (error) => {
    log.fatal({ err: error }, 'vault could not listen');
    process.exit(1);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'vault stopping');
    server.close(() => {
      vault.close().finally(() => process.exit(0));
    });
    server.closeAllConnections();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function supervise(config: VaultConfig, log: Logger): Promise<void> {
  // Migrations, the first transport key, dev key files and the demo merchant, made once before any worker races for them.
  await (await openVault(config, { log, maintenance: false, jobs: false })).close();
  let stopping = false;
  const restarts: number[] = [];
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts[0]! < now - 60_000) restarts.shift();
    log.error({ pid: worker.process.pid, code, signal }, 'vault worker died');
    if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
      log.fatal('vault workers keep dying; stopping');
      process.exit(1);
    }
    cluster.fork();
  });
  for (let i = 0; i < config.workers; i++) cluster.fork();
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    log.info({ signal }, 'vault stopping');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

try {
  if (config.workers > 1 && cluster.isPrimary) await supervise(config, log);
  else await serve(config, log);
} catch (error) {
  log.fatal({ err: error }, 'vault failed to start');
  process.exit(1);
}
