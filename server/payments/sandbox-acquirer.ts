/**
 * The sandbox acquirer: outcomes are decided by the card number, as in the
 * API's table of test cards. Every other valid card is approved.
 */
export type AuthorizationOutcome = { approved: true } | { approved: false; declineCode: string };

export class AcquirerError extends Error {
  constructor() {
    super('the sandbox acquirer failed to answer');
    this.name = 'AcquirerError';
  }
}

const DECLINES: Readonly<Record<string, string>> = {
  '4000000000000002': 'generic_decline',
  '4000000000009995': 'insufficient_funds',
  '4000000000000069': 'expired_card',
  '4000000000000127': 'incorrect_cvc',
};
const FAILS = new Set(['4000000000000119']);

export function authorize(cardNumber: string): AuthorizationOutcome {
  if (FAILS.has(cardNumber)) throw new AcquirerError();
  const declineCode = DECLINES[cardNumber];
  return declineCode === undefined ? { approved: true } : { approved: false, declineCode };
}

/** Account verification: a small authorization, voided at once (the void always succeeds in the sandbox). */
export function verifyAccount(cardNumber: string): { status: 'succeeded' | 'failed'; decline_code: string | null } {
  const outcome = authorize(cardNumber);
  return outcome.approved ? { status: 'succeeded', decline_code: null } : { status: 'failed', decline_code: outcome.declineCode };
}
