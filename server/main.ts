import type { AddressInfo } from 'node:net';
import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { openVault } from './vault.ts';

/** `npm run vault`: the vault alone, listening until SIGINT/SIGTERM. */
const config = loadConfig();
const log = createLogger({ level: config.logLevel });

try {
  const vault = await openVault(config, { log });
  const server = vault.app.listen(config.port, config.host, () => {
    const { port } = server.address() as AddressInfo;
    log.info({ url: `http://localhost:${port}`, storage: vault.db.kind, data_dir: config.dataDir }, 'vault listening');
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
} catch (error) {
  log.fatal({ err: error }, 'vault failed to start');
  process.exit(1);
}
