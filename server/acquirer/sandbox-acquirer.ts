import { setTimeout as sleep } from 'node:timers/promises';
import { newId } from '../lib/ids.ts';
import type { Logger } from '../log.ts';
import type { Queryable } from '../storage/db.ts';
import { redeemSandboxCryptogram } from '../network-tokens/sandbox.ts';
import { AcquirerError, type Acquirer, type AuthorizationRequest, type AuthorizationResult } from './acquirer.ts';

/** Declines by card number, as in the API's table of sandbox test cards. */
const DECLINES: Readonly<Record<string, string>> = {
  '4000000000000002': 'generic_decline',
  '4000000000009995': 'insufficient_funds',
  '4000000000000069': 'expired_card',
  '4000000000000127': 'incorrect_cvc',
};

/**
 * Cards whose issuer approves the cardholder's own payments but not the
 * merchant's later ones (for dunning): every merchant-initiated payment
 * (`always`), or every other one on a chain, starting with the first
 * (`alternate`: a failed charge whose retry succeeds).
 */
const MERCHANT_INITIATED_DECLINES: Readonly<Record<string, 'always' | 'alternate'>> = {
  '4000000000000341': 'always',
  '4000000000003063': 'alternate',
};

/** The card whose authorization answer is lost on the way back (the acquirer error). */
const ANSWER_LOST = '4000000000000119';

/**
 * The sandbox acquirer. Outcomes are decided by the card number; every other
 * valid card is approved. It remembers each authorization by reference, as a
 * real acquirer does, in a table of its own (`sandbox_acquirer_authorizations`,
 * written outside the vault's transactions, since it stands for another
 * system): for the acquirer-error card the first answer is lost
 * (`AcquirerError`), and a retry with the same reference gets the
 * authorization that was made. Capture, void and refund always succeed.
 *
 * It checks stored-credential flags as a card network does: a
 * merchant-initiated payment must cite the network transaction id of an
 * approved authorization (the chain's first, customer-initiated payment),
 * else it is declined `stored_credential_required`; an approved
 * authorization gets a network transaction id of its own. `delayMs`
 * simulates the acquirer's latency: the authorization is made, and its
 * answer takes that long to come back (per submission). With a latency,
 * each submission is logged once its authorizations are made, so a crash
 * test can stop the vault while answers are on their way.
 */
export class SandboxAcquirer implements Acquirer {
  readonly #db: Queryable;
  readonly #delayMs: number;
  readonly #log: Logger | undefined;

  constructor(db: Queryable, options: { delayMs?: number; log?: Logger } = {}) {
    this.#db = db;
    this.#delayMs = options.delayMs ?? 0;
    this.#log = options.log;
  }

  async authorize(request: AuthorizationRequest): Promise<AuthorizationResult> {
    const [answer] = await this.authorizeMany([request]);
    if (answer instanceof AcquirerError) throw answer;
    return answer!;
  }

  /** One statement for the whole submission; a merchant-initiated item's chain is looked up as the item is decided. */
  async authorizeMany(requests: readonly AuthorizationRequest[]): Promise<(AuthorizationResult | AcquirerError)[]> {
    if (requests.length === 0) return [];
    // A network token goes with a cryptogram the network checks: good for one authorization only.
    const badCryptograms = await Promise.all(
      requests.map(async (request) => request.networkToken !== undefined && !(await redeemSandboxCryptogram(this.#db, request.networkToken.cryptogram))),
    );
    const items = requests.map((request, n) => ({
      reference: request.reference,
      nti: newId('nti', 12),
      initiator: request.initiator,
      channel: request.channel ?? 'ecommerce',
      previous: request.previousNetworkTransactionId ?? null,
      card_decline: badCryptograms[n] ? 'invalid_cryptogram' : (DECLINES[request.card.number] ?? null),
      mit_rule: MERCHANT_INITIATED_DECLINES[request.card.number] ?? null,
    }));
    const { rows } = await this.#db.query<{ reference: string; approved: boolean; decline_code: string | null; network_transaction_id: string | null; seen_before: boolean }>(
      `with item as (
         select * from rows from (jsonb_to_recordset($1::jsonb)
                  as (reference text, nti text, initiator text, channel text, previous text, card_decline text, mit_rule text))
                with ordinality as i(reference, nti, initiator, channel, previous, card_decline, mit_rule, n)),
       decided as (
         select i.*, case
             when i.initiator = 'merchant' and not exists (
               select 1 from sandbox_acquirer_authorizations a where a.network_transaction_id = i.previous and a.approved)
               then 'stored_credential_required'
             when i.card_decline is not null then i.card_decline
             when i.initiator = 'merchant' and i.mit_rule = 'always' then 'insufficient_funds'
             when i.initiator = 'merchant' and i.mit_rule = 'alternate'
                  and (select count(*) from sandbox_acquirer_authorizations a where a.previous_network_transaction_id = i.previous) % 2 = 0
               then 'insufficient_funds'
           end as code
         from item i)
       insert into sandbox_acquirer_authorizations
         (reference, approved, decline_code, network_transaction_id, initiator, channel, previous_network_transaction_id)
       select reference, code is null, code, case when code is null then nti end, initiator, channel, previous from decided order by n
       -- a no-op update, so a reference seen before returns its first authorization
       on conflict (reference) do update set reference = excluded.reference
       returning reference, approved, decline_code, network_transaction_id, (xmax <> 0) as seen_before`,
      [JSON.stringify(items)],
    );
    if (this.#delayMs > 0) {
      // `fresh`: how many were made now rather than found from an earlier submission of the same reference.
      this.#log?.info({ made: rows.length, fresh: rows.filter((row) => !row.seen_before).length, delay_ms: this.#delayMs }, 'sandbox authorizations made');
      await sleep(this.#delayMs);
    }
    const byReference = new Map(rows.map((row) => [row.reference, row]));
    return requests.map((request) => {
      const row = byReference.get(request.reference)!;
      // A first sight of the acquirer-error card: the authorization is made, its answer lost.
      if (!row.seen_before && request.card.number === ANSWER_LOST) return new AcquirerError('the sandbox acquirer did not answer');
      if (!row.approved) return { approved: false, declineCode: row.decline_code ?? 'generic_decline' };
      return { approved: true, networkTransactionId: row.network_transaction_id ?? undefined };
    });
  }

  async capture(): Promise<void> {}

  async void(): Promise<void> {}

  async refund(): Promise<void> {}
}
