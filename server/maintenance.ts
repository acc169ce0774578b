import type { Logger } from 'pino';
import type { AuditLog } from './audit/audit.ts';
import type { IdempotencyStore } from './idempotency/idempotency.ts';
import type { TransportKeyring } from './keys/transport-keys.ts';
import type { FieldsSessions } from './sessions/service.ts';
import type { TokenVault } from './tokens/service.ts';

export interface MaintenanceTasks {
  keyring: TransportKeyring;
  tokens: TokenVault;
  sessions: FieldsSessions;
  idempotency: IdempotencyStore;
  audit: AuditLog;
}

/**
 * Housekeeping on a timer: destroys retired transport keys and expired card
 * data, forgets old sessions and idempotency records, picks up key rotations
 * made by other vault processes, and logs the head of every audit chain that
 * moved (the outside witness `audit verify --expect` checks against). A
 * failed round (storage down) is logged and retried on the next tick; it
 * never stops the vault.
 */
export function startMaintenance(tasks: MaintenanceTasks, log: Logger, intervalMs = 60_000): () => void {
  let running = false;
  const loggedHeads = new Map<string, number>();
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
      for (const head of await tasks.audit.chainHeads()) {
        if (loggedHeads.get(head.chain) === head.seq) continue;
        loggedHeads.set(head.chain, head.seq);
        // `audit verify --expect <audit_chain>:<seq>:<hash>` checks the log against this line later.
        log.info({ audit_chain: head.chain, seq: head.seq, hash: head.hash }, 'audit chain head');
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
