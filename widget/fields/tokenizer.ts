/**
 * Turns a collected card into a token: encrypt, `POST /v1/tokens`, and open a
 * new session once if the one the document came with has run out.
 */
import { VAULT_TIMEOUT_MS } from '../shared/constants.ts';
import { NETWORK_ERROR } from '../shared/errors.ts';
import type { TokenResult } from '../shared/messages.ts';
import type { CollectedCard } from './card-fields.ts';
import type { FieldsConfig } from './config.ts';
import { encryptForVault } from './encrypt.ts';
import { postToVault, type Outcome } from './vault-client.ts';

/** Renew a session this long before it expires rather than have the vault refuse it. */
const SESSION_MARGIN_MS = 60_000;
/** How long a request that got no answer may be sent again as it was; the vault refuses ciphertext older than 10 minutes. */
const RESEND_WINDOW_MS = 5 * 60_000;

interface TokenRequest extends CollectedCard {
  customer: string | undefined;
}

/** A request sent without an answer: sending it again, byte for byte with the same Idempotency-Key, cannot create a second token. */
interface UnansweredRequest {
  about: string;
  sentAt: number;
  idempotencyKey: string;
  body: string;
}

export function createTokenizer(config: FieldsConfig): (request: TokenRequest) => Promise<Outcome<TokenResult>> {
  let session = config.session;
  let unanswered: UnansweredRequest | undefined;

  const openSession = async (signal: AbortSignal): Promise<Outcome<unknown>> => {
    const body = JSON.stringify({ key: config.publishableKey, parent_origin: config.parentOrigin });
    const outcome = await postToVault<FieldsConfig['session']>('/v1/sessions', body, signal);
    if (outcome.ok) session = outcome.value;
    return outcome;
  };

  const createToken = async (request: TokenRequest, signal: AbortSignal): Promise<Outcome<TokenResult>> => {
    const about = JSON.stringify([request, session.session]);
    if (unanswered?.about !== about || Date.now() - unanswered.sentAt > RESEND_WINDOW_MS) {
      const card = await encryptForVault(request.card, config.jwks.keys[0]);
      unanswered = {
        about,
        sentAt: Date.now(),
        idempotencyKey: crypto.randomUUID(),
        body: JSON.stringify({
          key: config.publishableKey,
          session: session.session,
          card,
          reusable: request.reusable,
          customer: request.customer,
          ...(request.moto ? { moto: true } : {}),
        }),
      };
    }
    const outcome = await postToVault<TokenResult>('/v1/tokens', unanswered.body, signal, unanswered.idempotencyKey);
    if (outcome.ok || outcome.error !== NETWORK_ERROR) unanswered = undefined;
    if (!outcome.ok) return outcome;
    // Only what the merchant page may see goes on.
    const { token, reusable, card } = outcome.value;
    return { ok: true, value: { token, reusable, card: { brand: card.brand, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year } } };
  };

  return async (request) => {
    const signal = AbortSignal.timeout(VAULT_TIMEOUT_MS);
    if (Date.parse(session.expires_at) - Date.now() < SESSION_MARGIN_MS) {
      const renewed = await openSession(signal);
      if (!renewed.ok) return renewed;
    }
    const outcome = await createToken(request, signal);
    if (outcome.ok || !outcome.error.code.startsWith('session')) return outcome;
    const renewed = await openSession(signal);
    return renewed.ok ? createToken(request, signal) : renewed;
  };
}
