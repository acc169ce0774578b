import type { Logger } from 'pino';
import type { IdempotencyStore } from './idempotency/idempotency.ts';
import type { TransportKeyring } from './keys/transport-keys.ts';
import type { FieldsSessions } from './sessions/service.ts';
import type { TokenVault } from './tokens/service.ts';

export interface MaintenanceTasks {
  keyring: TransportKeyring;
  tokens: TokenVault;
  sessions: FieldsSessions;
  idempotency: IdempotencyStore;
}

/**
 * Housekeeping on a timer: destroys retired transport keys and expired card
 * data, forgets old sessions and idempotency records, and picks up key
 * rotations made by other vault processes. A failed round (storage down) is
 * logged and retried on the next tick; it never stops the vault.
 */
export function startMaintenance(tasks: MaintenanceTasks, log: Logger, intervalMs = 60_000): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await tasks.keyring.destroyExpired();
      await tasks.keyring.reload();
      const erased = await tasks.tokens.eraseExpired();
      const sessions = await tasks.sessions.purgeExpired();
      const idempotency = await tasks.idempotency.purgeExpired();
      if (erased.cvcs + erased.cards + sessions + idempotency > 0) {
        log.info({ ...erased, sessions, idempotency }, 'expired data erased');
      }
    } catch (error) {
      log.warn({ err: error }, 'maintenance round failed; will retry');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  void tick();
  return () => clearInterval(timer);
}
