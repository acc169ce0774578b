import type { Logger } from 'pino';
import { newShopId } from './context.ts';
import type { ShopDb } from './db.ts';
import { safeError, ShopError } from './errors.ts';
import { saveSecretKey } from './secret-key.ts';
import { unanswered, VaultRequestError, type RolledSecretKey, type VaultClient } from './vault-client.ts';

/** A roll call that got no answer is sent again, same Idempotency-Key and body, this many times. */
const ROLL_TRIES = 3;
const RETRY_DELAY_MS = 300;
/** How long the vault keeps an Idempotency-Key's answer: past that, asking again would make another key, not replay the lost one. */
const VAULT_REPLAY_MS = 24 * 3600_000;

interface KeyRollRow {
  id: string;
  expires_in: number;
  status: 'pending' | 'done' | 'failed';
  previous_keys_expire_at: Date | null;
  requested_at: Date;
}

/** A roll as the dashboard shows it: when, and when the keys before it stop working. Never the key. */
export interface KeyRollView {
  status: KeyRollRow['status'];
  requestedAt: string;
  previousKeysExpireAt: string | null;
}

const view = (row: KeyRollRow): KeyRollView => ({
  status: row.status,
  requestedAt: row.requested_at.toISOString(),
  previousKeysExpireAt: row.previous_keys_expire_at?.toISOString() ?? null,
});

/** Saving the rolled key failed after the vault made it: the shop uses it, but a restart would not. */
class SecretKeyNotSaved extends Error {
  override readonly name = 'SecretKeyNotSaved';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The merchant rolls the shop's secret key from the dashboard. A roll is a
 * row (`key_rolls`, its Idempotency-Key `key-roll-<id>`) written before the
 * vault is asked, so a roll whose answer is lost — the network, or the shop
 * dying before it saved the key — is asked for again with the same key at
 * the next roll or start, and the vault replays the key it made. The new key
 * is used at once and saved to `<shop data>/vault-secret-key`; it never
 * reaches the database, a log line or a page.
 */
export class SecretKeyRolls {
  readonly #db: ShopDb;
  readonly #vault: VaultClient;
  readonly #shopDataDir: string;
  readonly #log: Logger;
  /** One roll at a time: two at once would each end the key the other was made with. */
  #busy = false;

  constructor(deps: { db: ShopDb; vault: VaultClient; shopDataDir: string; log: Logger }) {
    this.#db = deps.db;
    this.#vault = deps.vault;
    this.#shopDataDir = deps.shopDataDir;
    this.#log = deps.log;
  }

  /** The last roll, for the dashboard. */
  async latest(): Promise<KeyRollView | null> {
    const { rows } = await this.#db.query<KeyRollRow>('select * from key_rolls order by requested_at desc limit 1');
    return rows[0] ? view(rows[0]) : null;
  }

  /** Rolls the secret key; the keys before it keep working for `expiresIn` seconds (0: they stop now). */
  async roll(expiresIn: number): Promise<KeyRollView> {
    return this.#alone(async () => {
      // A roll whose answer never came may have made a key at the vault: it is finished first, or this one would end that key unseen.
      await this.#finishPending();
      const { rows } = await this.#db.query<KeyRollRow>('insert into key_rolls (id, expires_in) values ($1, $2) returning *', [newShopId('roll'), expiresIn]);
      return view(await this.#complete(rows[0]!, false));
    });
  }

  /**
   * At start: asks again for a roll whose answer never came. Never throws:
   * a vault that is down leaves the roll pending for the next start or roll.
   */
  async resumePending(): Promise<void> {
    try {
      await this.#alone(() => this.#finishPending());
    } catch (error) {
      // A ShopError was logged where it was made.
      if (!(error instanceof ShopError)) this.#log.error({ err: safeError(error) }, 'resuming a key roll failed');
    }
  }

  async #alone<T>(work: () => Promise<T>): Promise<T> {
    if (this.#busy) throw new ShopError(409, 'key_roll_in_progress', 'The secret key is being rolled already. Reload the dashboard in a moment.');
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  async #finishPending(): Promise<void> {
    const { rows } = await this.#db.query<KeyRollRow>(`select * from key_rolls where status = 'pending' order by requested_at`);
    for (const row of rows) {
      if (Date.now() - row.requested_at.getTime() > VAULT_REPLAY_MS) {
        await this.#db.query(`update key_rolls set status = 'failed', completed_at = now() where id = $1`, [row.id]);
        this.#log.warn({ key_roll: row.id }, 'key roll unanswered for longer than the vault keeps answers: not asked for again');
        continue;
      }
      await this.#complete(row, true);
    }
  }

  /** Asks the vault for the roll (again, if `askedBefore`), then uses and saves the key it gives. */
  async #complete(row: KeyRollRow, askedBefore: boolean): Promise<KeyRollRow> {
    const log = this.#log.child({ key_roll: row.id });
    let sentAgain = askedBefore;
    try {
      return await this.#vault.rolling(async () => {
        const rolled = await this.#ask(row, () => {
          sentAgain = true;
        });
        this.#vault.useSecretKey(rolled.secret_key);
        try {
          await saveSecretKey(this.#shopDataDir, rolled.secret_key);
        } catch (error) {
          throw new SecretKeyNotSaved('The rolled secret key could not be saved.', { cause: error });
        }
        const { rows } = await this.#db.query<KeyRollRow>(
          `update key_rolls set status = 'done', previous_keys_expire_at = $2, completed_at = now() where id = $1 returning *`,
          [row.id, rolled.previous_keys_expire_at],
        );
        log.info({ previous_keys_expire_at: rolled.previous_keys_expire_at, asked_again: sentAgain }, 'secret key rolled; the shop uses the new key');
        return rows[0]!;
      });
    } catch (error) {
      throw await this.#failed(row, error, sentAgain, log);
    }
  }

  async #ask(row: KeyRollRow, onRetry: () => void): Promise<RolledSecretKey> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.#vault.rollSecretKey(row.expires_in, `key-roll-${row.id}`);
      } catch (error) {
        if (!unanswered(error) || tries >= ROLL_TRIES) throw error;
        onRetry();
        this.#log.warn({ key_roll: row.id, tries }, 'key roll unanswered; sending it again');
        await sleep(RETRY_DELAY_MS * tries);
      }
    }
  }

  /** What a failed roll leaves behind, logged for the operator, and the dashboard's answer. */
  async #failed(row: KeyRollRow, error: unknown, sentAgain: boolean, log: Logger): Promise<ShopError> {
    if (error instanceof SecretKeyNotSaved) {
      // Pending on purpose: asking again replays the same key (the shop now calls with it), and this time it may be saved.
      log.error({ err: safeError(error) }, 'the rolled secret key is in use but could not be saved; a restart would go back to the old key');
      return new ShopError(
        500,
        'secret_key_not_saved',
        'The vault made the new key and the shop uses it, but could not save it in its data folder, so a restart would lose it. Fix the folder, then roll again: the shop asks for this same roll first.',
      );
    }
    // A 2xx the shop could not read made a key all the same: kept pending, so asking again replays it.
    if (unanswered(error) || (error instanceof VaultRequestError && error.status < 300)) {
      log.warn({ err: safeError(error) }, 'key roll unanswered; it is asked for again, same Idempotency-Key, at the next roll or start');
      return new ShopError(
        503,
        'vault_unavailable',
        'The vault did not answer. Roll again in a moment: the shop first asks for this same roll again, so a key the vault may have made is not lost.',
      );
    }
    await this.#db.query(`update key_rolls set status = 'failed', completed_at = now() where id = $1`, [row.id]);
    if (error instanceof VaultRequestError && error.status === 401) {
      if (sentAgain) {
        log.error(
          { vault_status: error.status, vault_code: error.code },
          'the vault refused the secret key when the roll was asked for again: if the roll ended the old key at once, the new key is lost and the merchant needs a new key from the vault operator',
        );
      } else {
        log.error({ vault_status: error.status, vault_code: error.code }, 'the vault refused the shop’s secret key; nothing was rolled');
      }
      return new ShopError(502, 'secret_key_refused', 'The vault refused the shop’s secret key, so it could not be rolled. The shop’s log says more.');
    }
    if (error instanceof VaultRequestError) {
      log.error({ vault_status: error.status, vault_code: error.code }, 'the vault refused the key roll');
      return new ShopError(502, 'vault_error', 'The vault refused to roll the key; nothing changed. The shop’s log says more.');
    }
    log.error({ err: { ...safeError(error), stack: error instanceof Error ? error.stack : undefined } }, 'key roll failed');
    return new ShopError(500, 'internal_error', 'The key roll failed. The shop’s log says more.');
  }
}
