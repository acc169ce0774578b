/**
 * Turns the card in the fields into a token (payment and signup modes) or a
 * CVC handle (cvc mode): check, encrypt, `POST /v1/tokens`, and show the
 * outcome in the fields. This is the chunk the fields load after `ready`
 * (with the typing rules). The fields document carries no session, so it can
 * be cached: the fields open one as soon as this chunk loads (`prepare`), so
 * the shopper's typing time pays for it, and again once if it has run out.
 *
 * The card is encrypted ahead too: each time the shopper's input leaves the
 * fields complete, the card as it then stands is sealed into a JWE (under a
 * fresh ephemeral key, as every message is), and a tokenization of exactly
 * that card sends it rather than encrypting then. A sealed card is sent at
 * most once and is dropped as soon as the card changes; it never leaves the
 * frame except in the request to the vault.
 */
import { TOKEN_RESULT_HEADER, VAULT_TIMEOUT_MS } from '../shared/constants.ts';
import { NETWORK_ERROR } from '../shared/errors.ts';
import type { CardOptions, CvcResult, TokenResult } from '../shared/messages.ts';
import type { CardFields, CollectedCard } from './card-fields.ts';
import type { FieldsConfig } from './config.ts';
import { cardEncrypter } from './encrypt.ts';
import { newIdempotencyKey } from './idempotency-key.ts';
import { displayOf } from './vault-errors.ts';
import { postToVault, type Outcome } from './vault-client.ts';

/** Renew a session this long before it expires rather than have the vault refuse it. */
const SESSION_MARGIN_MS = 60_000;
/** How long a request that got no answer may be sent again as it was; the vault refuses ciphertext older than 10 minutes. */
const RESEND_WINDOW_MS = 5 * 60_000;
/** How old a card sealed ahead may be when it is first sent: a resend of it, up to RESEND_WINDOW_MS later, must still be well inside the vault's 10 minutes. */
const SEALED_AHEAD_MS = 60_000;

interface Session {
  session: string;
  expires_at: string;
}

interface TokenRequest extends CollectedCard {
  customer: string | undefined;
}

/** The card as it stood when the shopper last left the fields complete, encrypted: to be sent once, or dropped. */
interface SealedAhead {
  plaintext: string;
  sealedAt: number;
  jwe: Promise<string>;
}

/** A request sent without an answer: sending it again, byte for byte with the same Idempotency-Key, cannot create a second token. */
interface UnansweredRequest {
  about: string;
  sentAt: number;
  idempotencyKey: string;
  body: string;
}

export interface Tokenizer {
  /**
   * Tokenizes what `fields` hold (their typing rules loaded): every error
   * shows in the fields, success is announced there, and the outcome is what
   * the merchant page receives. CVC mode resolves with the CVC as a JWE to
   * the vault's key, for the merchant to pass on, without calling the vault.
   */
  tokenize(fields: CardFields, options: CardOptions): Promise<Outcome<TokenResult | CvcResult>>;
  /**
   * Opens the session a card of these options will need, if it needs one and
   * has none yet; from the first call on, seals `fields`' card ahead whenever
   * the shopper's input leaves it complete.
   */
  prepare(options: CardOptions, fields: CardFields): void;
}

export function createTokenizer(config: FieldsConfig): Tokenizer {
  const encrypt = cardEncrypter(config.jwks.keys[0]);
  let unanswered: UnansweredRequest | undefined;
  let ahead: SealedAhead | undefined;
  let watching: CardFields | undefined;

  /** Seals the card as it stands if it is complete and not sealed yet; what was sealed for another card is dropped. */
  const sealAhead = (fields: CardFields): void => {
    const read = fields.read();
    const plaintext = read && JSON.stringify(read.card);
    if (plaintext === ahead?.plaintext) return;
    ahead = plaintext ? { plaintext, sealedAt: Date.now(), jwe: encrypt(plaintext) } : undefined;
    // A failure surfaces from `seal`, which then encrypts again.
    ahead?.jwe.catch(() => undefined);
  };

  /** `plaintext` as a JWE: the one sealed ahead if it is this card and recent (it is used up here), else a new one. */
  const seal = (plaintext: string): Promise<string> => {
    const sealed = ahead;
    ahead = undefined;
    return sealed?.plaintext === plaintext && Date.now() - sealed.sealedAt < SEALED_AHEAD_MS
      ? sealed.jwe.catch(() => encrypt(plaintext))
      : encrypt(plaintext);
  };

  const openSession = (): Promise<Outcome<Session>> =>
    postToVault<Session>(
      '/v1/sessions',
      JSON.stringify({ key: config.publishableKey, parent_origin: config.parentOrigin }),
      AbortSignal.timeout(VAULT_TIMEOUT_MS),
    );
  let session: Promise<Outcome<Session>> | undefined;

  /** A session with time left: the one opened ahead if it is usable, else a new one. */
  const currentSession = async (): Promise<Outcome<Session>> => {
    const opened = await session;
    if (opened?.ok && Date.parse(opened.value.expires_at) - Date.now() > SESSION_MARGIN_MS) return opened;
    session = openSession();
    return session;
  };

  const createToken = async (request: TokenRequest, sessionId: string, signal: AbortSignal): Promise<Outcome<TokenResult>> => {
    // The plaintext is serialized once: it is both what gets encrypted and how a resend is recognised.
    const plaintext = JSON.stringify(request.card);
    const about = JSON.stringify([sessionId, request.reusable, request.customer, request.moto === true]) + plaintext;
    if (unanswered?.about !== about || Date.now() - unanswered.sentAt > RESEND_WINDOW_MS) {
      unanswered = {
        about,
        sentAt: Date.now(),
        idempotencyKey: newIdempotencyKey(),
        body: JSON.stringify({
          key: config.publishableKey,
          session: sessionId,
          card: await seal(plaintext),
          reusable: request.reusable,
          customer: request.customer,
          ...(request.moto ? { moto: true } : {}),
        }),
      };
    }
    const outcome = await postToVault<TokenResult>('/v1/tokens', unanswered.body, signal, unanswered.idempotencyKey, TOKEN_RESULT_HEADER);
    if (outcome.ok || outcome.error !== NETWORK_ERROR) unanswered = undefined;
    if (!outcome.ok) return outcome;
    // Only what the merchant page may see goes on.
    const { token, reusable, card } = outcome.value;
    return { ok: true, value: { token, reusable, card: { brand: card.brand, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year } } };
  };

  const token = async (request: TokenRequest): Promise<Outcome<TokenResult>> => {
    const signal = AbortSignal.timeout(VAULT_TIMEOUT_MS);
    let opened = await currentSession();
    if (!opened.ok) return opened;
    const outcome = await createToken(request, opened.value.session, signal);
    if (outcome.ok || !outcome.error.code.startsWith('session')) return outcome;
    session = openSession();
    opened = await session;
    return opened.ok ? createToken(request, opened.value.session, signal) : opened;
  };

  return {
    async tokenize(fields, options) {
      const collected = fields.collect();
      if ('error' in collected) return { ok: false, error: collected.error };
      const outcome: Outcome<TokenResult | CvcResult> =
        options.mode === 'cvc'
          ? { ok: true, value: { cvc: await seal(JSON.stringify(collected.card)) } }
          : await token({ ...collected, customer: options.customer });
      // Success is announced after the merchant page has its result: the render is not on the result's way.
      // A problem shows at once, so that a `clear()` the page sends on hearing of it always comes after.
      if (outcome.ok) setTimeout(() => fields.announce(fields.messages.sent));
      else fields.showProblem(displayOf(outcome.error));
      return outcome;
    },
    prepare(options, fields) {
      // CVC mode never calls the vault.
      if (options.mode !== 'cvc') session ??= openSession();
      if (watching) return;
      watching = fields;
      // Input events reach the fields' element after its inputs' own handlers have taken the new value.
      for (const type of ['input', 'change']) fields.addEventListener(type, () => sealAhead(fields));
      sealAhead(fields);
    },
  };
}
