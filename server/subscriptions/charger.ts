import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AcquirerError, type Acquirer, type AuthorizationRequest, type AuthorizationResult } from '../acquirer/acquirer.ts';
import type { AuditLog } from '../audit/audit.ts';
import { READABLE } from '../cards/liveness.ts';
import type { CardSealer, StoredCard } from '../keys/card-keys.ts';
import { base62 } from '../lib/ids.ts';
import type { MerchantDirectory } from '../merchants/service.ts';
import type { Db } from '../storage/db.ts';
import type { IntervalUnit } from './calendar.ts';
import { recordCharges, type ChargeOutcome, type DueCharge } from './record.ts';

export interface ChargerDeps {
  db: Db;
  acquirer: Acquirer;
  cards: CardSealer;
  merchants: MerchantDirectory;
  audit: AuditLog;
  log: Logger;
  /** How long a worker holds the subscriptions it claimed (a worker that died lets go when it passes). */
  leaseMs: number;
}

/** Subscriptions claimed and charged together: one claim, one token read and one recording transaction for them all. */
const BATCH = 100;
/** Asks per try whose answer got lost before it is left to the next claim; the same reference each time. */
const ACQUIRER_TRIES = 3;
/** How often a worker with nothing to claim looks again while other workers still hold due subscriptions. */
const HELD_POLL_MS = 100;

/** Who the audit log says made the charges: the vault itself, on its schedule. */
const SCHEDULER = { actor: 'vault', clientIp: 'internal' };

interface TokenForCharge extends StoredCard {
  token: string;
  readable: boolean;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  network_transaction_id: string | null;
}

/**
 * The payment id of a try, which is also its reference at the acquirer:
 * derived from the subscription, period and attempt, so whichever worker
 * makes the try — the first, or one that takes over after a crash — asks
 * the acquirer about the same authorization, and the acquirer makes it once.
 */
export function chargePaymentId(charge: Pick<DueCharge, 'merchantId' | 'subscriptionId' | 'period' | 'attempt'>): string {
  const digest = createHash('sha256').update(`tessera/subscription-charge/${charge.merchantId}/${charge.subscriptionId}/${charge.period}/${charge.attempt}`).digest();
  return `pay_${base62(digest.subarray(0, 16))}`;
}

/**
 * Charges subscriptions whose next try is due on their merchant's clock:
 * claims a batch (`for update skip locked`, then a lease on each row, so no
 * lock is held while the acquirer answers and other workers take other
 * subscriptions), makes each try as a merchant-initiated payment citing the
 * token's stored credential, and records the batch in one transaction.
 * Exactly once per (subscription, period, attempt) whatever crashes or runs
 * alongside: the acquirer dedupes the try's reference, and the charge row's
 * key dedupes its recording (see record.ts).
 */
export class SubscriptionCharger {
  readonly #deps: ChargerDeps;

  constructor(deps: ChargerDeps) {
    this.#deps = deps;
  }

  /**
   * Charges everything due for `merchantId` (or every merchant), batch after
   * batch, until nothing due is left that another worker holds either (a
   * dead worker's claim runs out and is taken over here).
   */
  async runDue(merchantId: string | null, context: { requestId: string; signal: AbortSignal }): Promise<{ succeeded: number; failed: number }> {
    const totals = { succeeded: 0, failed: 0 };
    for (;;) {
      context.signal.throwIfAborted();
      const batch = await this.#claim(merchantId);
      if (batch.length === 0) {
        if (!(await this.anyDue(merchantId))) return totals;
        await sleep(HELD_POLL_MS, undefined, { signal: context.signal });
        continue;
      }
      const recorded = await this.#holding(batch, async () => {
        const outcomes = await this.#tryAll(batch);
        return this.#deps.db.transaction((tx) => recordCharges(tx, this.#deps.audit, outcomes, { ...SCHEDULER, requestId: context.requestId }));
      });
      const succeeded = recorded.filter((o) => o.result === 'approved').length;
      totals.succeeded += succeeded;
      totals.failed += recorded.length - succeeded;
      this.#deps.log.info({ claimed: batch.length, recorded: recorded.length, succeeded, pid: process.pid }, 'subscription charges recorded');
    }
  }

  /**
   * Runs `work` while renewing the batch's claims every third of the lease,
   * so a slow acquirer does not let another worker take over (and repeat)
   * tries that are under way here.
   */
  async #holding<T>(batch: DueCharge[], work: () => Promise<T>): Promise<T> {
    const renew = () =>
      this.#deps.db
        .query(
          `update subscriptions set claimed_until = now() + $3::double precision * interval '1 millisecond'
            where (merchant_id, id) in (select * from unnest($1::text[], $2::text[])) and claimed_until > now()`,
          [batch.map((c) => c.merchantId), batch.map((c) => c.subscriptionId), this.#deps.leaseMs],
        )
        .catch((error: unknown) => this.#deps.log.warn({ err: error }, 'renewing subscription claims failed'));
    const timer = setInterval(() => void renew(), Math.max(10, Math.floor(this.#deps.leaseMs / 3)));
    try {
      return await work();
    } finally {
      clearInterval(timer);
    }
  }

  /** Whether anything is due (claimed or not) for `merchantId`, or for any merchant. */
  async anyDue(merchantId: string | null): Promise<boolean> {
    const { rows } = await this.#deps.db.query<{ due: boolean }>(`select exists (select 1 from subscriptions s where ${dueCondition(merchantId)}) as due`, merchantId === null ? [] : [merchantId]);
    return rows[0]!.due;
  }

  async #claim(merchantId: string | null): Promise<DueCharge[]> {
    const params: unknown[] = [BATCH, this.#deps.leaseMs, ...(merchantId === null ? [] : [merchantId])];
    const { rows } = await this.#deps.db.query<{
      merchant_id: string;
      id: string;
      period: number;
      attempt: number;
      next_charge_at: Date;
      token: string;
      amount: number;
      currency: string;
      reference: string | null;
      start_at: Date;
      interval_unit: IntervalUnit;
      interval_count: number;
    }>(
      `with due as (
         select s.merchant_id, s.id from subscriptions s
          where ${dueCondition(merchantId, 3)} and s.claimed_until < now()
          order by s.next_charge_at, s.id
          limit $1
          for update of s skip locked)
       update subscriptions s set claimed_until = now() + $2::double precision * interval '1 millisecond'
         from due where s.merchant_id = due.merchant_id and s.id = due.id
       returning s.merchant_id, s.id, s.period, s.attempt, s.next_charge_at, s.token, s.amount::float8 as amount, s.currency, s.reference,
                 s.start_at, s.interval_unit, s.interval_count`,
      params,
    );
    return rows
      .map((row) => ({
        merchantId: row.merchant_id,
        subscriptionId: row.id,
        period: row.period,
        attempt: row.attempt,
        dueAt: row.next_charge_at,
        token: row.token,
        amount: row.amount,
        currency: row.currency,
        reference: row.reference,
        schedule: { startAt: row.start_at, unit: row.interval_unit, count: row.interval_count },
      }))
      .sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
  }

  /**
   * Makes every try of a batch at the acquirer, in one submission; a try
   * whose answer stays lost is left out (its claim runs out, and it is
   * tried again, by the same reference).
   */
  async #tryAll(batch: DueCharge[]): Promise<ChargeOutcome[]> {
    const tokens = await this.#tokens(batch);
    const outcomes: ChargeOutcome[] = [];
    const asks: { charge: DueCharge; token: TokenForCharge; request: AuthorizationRequest }[] = [];
    for (const charge of batch) {
      const token = tokens.get(`${charge.merchantId}/${charge.token}`);
      if (token === undefined || !token.readable || token.card_sealed === null) {
        outcomes.push({ ...charge, result: 'failed', failureCode: 'token_not_found' });
      } else if (token.network_transaction_id === null) {
        outcomes.push({ ...charge, result: 'failed', failureCode: 'stored_credential_required' });
      } else {
        const merchant = await this.#deps.merchants.byId(charge.merchantId);
        if (merchant === undefined) continue;
        const card = await this.#deps.cards.open(merchant, { token: token.token }, token);
        asks.push({
          charge,
          token,
          request: {
            reference: chargePaymentId(charge),
            card: { number: card.number, exp_month: token.exp_month, exp_year: token.exp_year },
            amount: charge.amount,
            currency: charge.currency,
            initiator: 'merchant',
            recurring: true,
            channel: 'ecommerce',
            agreement: 'subscription',
            previousNetworkTransactionId: token.network_transaction_id,
          },
        });
      }
    }
    let pending = asks;
    for (let ask = 1; ask <= ACQUIRER_TRIES && pending.length > 0; ask++) {
      let answers: (AuthorizationResult | AcquirerError)[];
      try {
        answers = await this.#deps.acquirer.authorizeMany(pending.map((item) => item.request));
      } catch (error) {
        if (!(error instanceof AcquirerError)) throw error;
        answers = pending.map(() => error);
      }
      const lost: typeof pending = [];
      await Promise.all(
        pending.map(async (item, i) => {
          const answer = answers[i]!;
          if (answer instanceof AcquirerError) return void lost.push(item);
          const shown = { paymentId: item.request.reference, brand: item.token.brand, last4: item.token.last4 };
          if (!answer.approved) return void outcomes.push({ ...item.charge, ...shown, result: 'declined', declineCode: answer.declineCode });
          await this.#deps.acquirer.capture(item.request.reference, item.charge.amount);
          outcomes.push({ ...item.charge, ...shown, result: 'approved', networkTransactionId: answer.networkTransactionId ?? null });
        }),
      );
      if (lost.length > 0) this.#deps.log.warn({ lost: lost.length, ask }, 'the acquirer did not answer some subscription charges');
      pending = lost;
    }
    return outcomes;
  }

  /** The batch's tokens, one read per merchant. */
  async #tokens(batch: DueCharge[]): Promise<Map<string, TokenForCharge>> {
    const byMerchant = new Map<string, Set<string>>();
    for (const charge of batch) byMerchant.set(charge.merchantId, (byMerchant.get(charge.merchantId) ?? new Set()).add(charge.token));
    const found = new Map<string, TokenForCharge>();
    for (const [merchantId, tokens] of byMerchant) {
      const { rows } = await this.#deps.db.query<TokenForCharge>(
        `select token, ${READABLE} as readable, card_sealed, card_key_sealed, data_key_version, brand, last4, exp_month, exp_year, network_transaction_id
           from tokens where merchant_id = $1 and token = any($2::text[])`,
        [merchantId, [...tokens]],
      );
      for (const row of rows) found.set(`${merchantId}/${row.token}`, row);
    }
    return found;
  }
}

/**
 * SQL: subscription `s` has a try due on its merchant's clock. For every
 * merchant at once, the latest any clock has reached bounds the index scan
 * first (clocks are never behind real time).
 */
export function dueCondition(merchantId: string | null, merchantParam = 1): string {
  const active = `s.status in ('active', 'past_due')`;
  if (merchantId !== null) return `${active} and s.merchant_id = $${merchantParam} and s.next_charge_at <= tessera_merchant_now($${merchantParam})`;
  return `${active} and s.next_charge_at <= now() + (select coalesce(max(ahead), interval '0') from sandbox_clocks)
          and s.next_charge_at <= tessera_merchant_now(s.merchant_id)`;
}
