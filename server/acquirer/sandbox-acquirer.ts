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
 */
export class SandboxAcquirer implements Acquirer {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async authorize(request: AuthorizationRequest): Promise<AuthorizationResult> {
    // A network token goes with a cryptogram the network checks: good for one authorization only.
    const badCryptogram = request.networkToken !== undefined && !(await redeemSandboxCryptogram(this.#db, request.networkToken.cryptogram));
    const declineCode = badCryptogram ? 'invalid_cryptogram' : (DECLINES[request.card.number] ?? null);
    const { rows } = await this.#db.query<{ approved: boolean; decline_code: string | null; seen_before: boolean }>(
      `insert into sandbox_acquirer_authorizations (reference, approved, decline_code)
       values ($1, $2, $3)
       -- a no-op update, so a reference seen before returns its first authorization
       on conflict (reference) do update set reference = excluded.reference
       returning approved, decline_code, (xmax <> 0) as seen_before`,
      [request.reference, declineCode === null, declineCode],
    );
    const row = rows[0]!;
    // A first sight of the acquirer-error card: the authorization is made, its answer lost.
    if (!row.seen_before && request.card.number === ANSWER_LOST) throw new AcquirerError('the sandbox acquirer did not answer');
    return row.approved ? { approved: true } : { approved: false, declineCode: row.decline_code ?? 'generic_decline' };
  }

  async capture(): Promise<void> {}

  async void(): Promise<void> {}

  async refund(): Promise<void> {}
}
