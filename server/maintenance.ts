import type { Logger } from 'pino';
import type { IdempotencyStore } from './idempotency/idempotency.ts';
import type { CvcKeys } from './keys/cvc-keys.ts';
import type { DataKeyRotation } from './keys/data-key-rotation.ts';
import type { TransportKeyring } from './keys/transport-keys.ts';
import type { FieldsSessions } from './sessions/service.ts';
import type { Db } from './storage/db.ts';
import { eraseExpired } from './tokens/housekeeping.ts';
import type { DeclineVelocity } from './velocity/declines.ts';

export interface MaintenanceTasks {
  db: Db;
  keyring: TransportKeyring;
  cvcs: CvcKeys;
  declines: DeclineVelocity;
  sessions: FieldsSessions;
  idempotency: IdempotencyStore;
  dataKeyRotation: DataKeyRotation;
}

/** How long one round may spend re-encrypting, so a big rotation goes on over many rounds. */
const ROTATION_BUDGET_MS = 5_000;

/**
 * Housekeeping on a timer: destroys retired transport keys, expired card
 * data and spent CVC bucket keys, forgets old sessions and idempotency
 * records, picks up key rotations made by other vault processes, and moves
 * cards forward after a data key roll (a new master key is the operator's
 * call: `tessera keys rewrap`). A failed round (storage down) is logged and
 * retried on the next tick; it never stops the vault. Every step is safe to
 * run on several vault processes at once.
 */
export function startMaintenance(
  tasks: MaintenanceTasks,
  log: Logger,
  options: { intervalMs: number; timer: boolean },
): { runOnce(): Promise<void>; stop(): void } {
  let running: Promise<void> | undefined;
  const round = async () => {
    await tasks.keyring.destroyExpired();
    await tasks.keyring.reload();
    const erased = await eraseExpired(tasks);
    const sessions = await tasks.sessions.purgeExpired();
    const idempotency = await tasks.idempotency.purgeExpired();
    if (erased.cvcs + erased.cards + erased.pending + erased.cvcKeys + sessions + idempotency > 0) {
      log.info({ ...erased, sessions, idempotency }, 'expired data erased');
    }
    await tasks.dataKeyRotation.run({ deadline: Date.now() + ROTATION_BUDGET_MS });
  };
  const start = () => (running = round().finally(() => (running = undefined)));
  // A round asked for now sees everything done before the ask: it waits for one in progress, then runs its own.
  const runOnce = async () => {
    while (running !== undefined) await running.catch(() => undefined);
    return start();
  };
  const tick = () => {
    if (running === undefined) void start().catch((error: unknown) => log.warn({ err: error }, 'maintenance round failed; will retry'));
  };
  if (!options.timer) return { runOnce, stop: () => undefined };
  const timer = setInterval(tick, options.intervalMs);
  timer.unref();
  tick();
  return { runOnce, stop: () => clearInterval(timer) };
}
