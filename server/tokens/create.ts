import type { KeyObject } from 'node:crypto';
import { verifyAccount, type Verification } from '../acquirer/verification.ts';
import type { AuditEntry, AuditSource } from '../audit/audit.ts';
import { VaultError } from '../errors.ts';
import { recordResponse, type IdempotencyClaim, type StoredResponse } from '../idempotency/idempotency.ts';
import { cardCiphertextKey, decryptCardCiphertext, replayKey, replayRecordUntil } from '../keys/card-ciphertext.ts';
import { newId } from '../lib/ids.ts';
import type { Merchant } from '../merchants/service.ts';
import { checkSession, SESSION_TOKEN_LIMIT, sessionExhausted } from '../sessions/service.ts';
import type { Queryable } from '../storage/db.ts';
import { callFunction, refusalOf } from '../storage/functions.ts';
import { parseCardPlaintext, type Card } from '../cards/card.ts';
import { cardDetails, sealDetails, type CardServiceDeps, type SealedDetails } from '../cards/deps.ts';
import { PENDING_LIFETIME_MS } from '../cards/pending.ts';
import { SINGLE_USE_LIFETIME_MS, TOKEN_RECORD, tokenRecordOf, type TokenRecord } from '../cards/records.ts';

export interface CreateTokenInput {
  merchant: Merchant;
  /** Compact JWE of the card, encrypted to a transport key. */
  ciphertext: string;
  reusable: boolean;
  customer?: string | undefined;
  value?: string | undefined;
  declineDuplicates?: boolean;
  verify?: boolean;
  /** Keyed in by a merchant's agent (the fields' moto mode): single-use, for MOTO payments only, never merged into a unique token. */
  moto?: boolean;
}

export interface TokenOutcome {
  token: TokenRecord;
  /** Unique tokens: the card was already tokenized and the existing token is returned. */
  existing: boolean;
  verification?: Verification;
}

/** Where a write comes from and what it must answer, so the response is stored with the token. */
export interface TokenWrite {
  /** Card fields: the session this token counts against (the request's address is then the shopper's). */
  session?: { id: string; publishableKey: string } | undefined;
  /** Set when the request carries an Idempotency-Key. */
  claim?: IdempotencyClaim | undefined;
  /** Who is tokenizing, as the audit log names them (`redactKey`), and from where. */
  actor: string;
  source: AuditSource;
  render: (outcome: TokenOutcome) => StoredResponse;
}

/**
 * Decrypts and validates the card, then writes the token, its audit entries
 * and the response in one statement (`tessera_create_token`). A merchant
 * server tokenizing a card that already has a token (unique tokens) takes a
 * transaction, since that token is refreshed instead; the card fields never
 * change a stored card (see `tokens/pending.ts`).
 *
 * Without an account verification, that statement is the request's one
 * round trip: it also checks the session, claims the Idempotency-Key (when
 * `claim.inStatement`: a stored response is replayed instead) and checks
 * that the transport key may still decrypt, the key itself being the one
 * this process holds. A card refused before that statement is answered as
 * the checks it skipped would have answered first (`refusedBeforeWrite`).
 * A verification calls the acquirer before the write, so its key and claim
 * are settled first, each in a round trip of its own.
 */
export async function createToken(deps: CardServiceDeps, input: CreateTokenInput, write: TokenWrite): Promise<StoredResponse & { replayed?: boolean }> {
  if (input.verify) {
    const card = openCard(input.ciphertext, (await cardCiphertextKey(input.ciphertext, deps.keyring, deps.ciphertextPolicy)).key);
    return written(deps, await (await prepareToken(deps, input, card, write)).write()).response;
  }
  let transport: { kid: string; key: KeyObject };
  let card: Card;
  try {
    transport = await cardCiphertextKey(input.ciphertext, { resolve: (kid) => deps.keyring.held(kid) }, deps.ciphertextPolicy);
  } catch (error) {
    return refusedBeforeWrite(deps, write, error);
  }
  try {
    card = openCard(input.ciphertext, transport.key);
  } catch (error) {
    return refusedBeforeWrite(deps, write, error, transport.kid);
  }
  const { response, replayed } = written(deps, await (await prepareToken(deps, input, card, write, transport.kid)).write());
  return { ...response, replayed };
}

/** A write committed: its background network token, if one went in, is provisioned by this process now. */
function written(deps: CardServiceDeps, settled: Settled): Settled {
  if (settled.networkToken !== undefined) deps.networkTokens?.provisionInBackground(settled.networkToken);
  return settled;
}

/**
 * A tokenization whose card was refused before its statement ran. The API
 * answers, first, a session that is not usable, then the Idempotency-Key's
 * stored response (or its 422/409), then a key that may no longer decrypt
 * (`kid`: the card was opened with it), and only then the card's fault:
 * those checks are made now, on this path alone, so a tokenization that
 * goes through pays for none of them.
 */
async function refusedBeforeWrite(deps: CardServiceDeps, write: TokenWrite, error: unknown, kid?: string): Promise<StoredResponse & { replayed: true }> {
  if (write.session !== undefined) await checkSession(deps.db, write.session.id, write.session.publishableKey);
  const stored = await write.claim?.inStatement?.stored();
  if (stored !== undefined) return { ...stored, replayed: true };
  if (kid !== undefined && (await deps.keyring.resolve(kid)) === undefined) throw new VaultError('unknown_kid', { param: 'card' });
  throw error;
}

/**
 * The card in a tokenization's JWE, opened with the key `cardCiphertextKey`
 * picked for it, and validated, on this thread: at ~0.1 ms a decrypt, a
 * round trip to the decrypt pool's threads cost more CPU than it moved off
 * this one (docs/decisions.md, "Tokenizations open their own cards"). The
 * pool is token batches'.
 */
function openCard(jwe: string, key: KeyObject): Card {
  return parseCardPlaintext(decryptCardCiphertext(jwe, key));
}

/** A token ready to be written: its card sealed, its statement's arguments made. */
export interface PreparedToken {
  readonly fingerprint: string;
  /**
   * Writes it: in `within`, the caller's transaction, else in a statement or
   * transaction of its own. Answers the outcome as well as the rendered response.
   */
  write(within?: Queryable): Promise<Settled>;
  /**
   * A merchant server's tokenization as one item of
   * `tessera_create_batch_tokens`, which calls `tessera_create_token` for it
   * with these arguments (json: bytes as `\x…` hex, times in ISO 8601).
   */
  readonly batchItem: Record<string, unknown>;
  /**
   * Finishes, in `tx`, a write whose `tessera_create_token` answered
   * `statementOutcome` (a unique token's refresh), or turns its refusal
   * (`refused:<SQLSTATE>`) into the error `POST /v1/tokens` would answer.
   */
  settle(tx: Queryable, statementOutcome: string): Promise<Settled>;
}

/** A written tokenization: its response, and what it did (a replay of a stored response did nothing). */
export type Settled = {
  response: StoredResponse;
  outcome: TokenOutcome;
  replayed?: true;
  /** The merchant's background network token, made with the token, for this process to provision (`network_token_in_memory`). */
  networkToken?: string;
};

/**
 * The work of `createToken` before its write, for a card already opened and
 * validated (a batch item is decrypted off the main thread, and its sealing
 * is done before its batch's transaction opens). `kid`: the transport key
 * the card was opened with, when the write is to check it still may.
 */
export async function prepareToken(deps: CardServiceDeps, input: CreateTokenInput, card: Card, write: TokenWrite, kid?: string): Promise<PreparedToken> {
  const { merchant } = input;
  const fingerprint = deps.merchantKeys.fingerprint(merchant, card.number);
  const verification = input.verify ? await verify(deps, merchant, fingerprint, card, write.claim) : undefined;
  // The verification was the card's authorization: its CVC is not kept after it.
  if (verification !== undefined) delete card.cvc;

  const now = Date.now();
  const record: TokenRecord = {
    token: input.value ?? newId('tok'),
    reusable: input.reusable,
    customer: input.customer ?? null,
    decline_duplicates: input.declineDuplicates ?? false,
    brand: card.brand,
    last4: card.last4,
    exp_month: card.exp_month,
    exp_year: card.exp_year,
    cardholder_name: card.name ?? null,
    fingerprint,
    expires_at: input.reusable ? null : new Date(now + SINGLE_USE_LIFETIME_MS),
    used_at: null,
    created_at: new Date(now),
    moto: input.moto ?? false,
  };
  const created = write.render({ token: record, existing: false, ...(verification === undefined ? {} : { verification }) });
  const sealed = await sealDetails(deps, merchant, { token: record.token }, card, now);
  const { session } = write;
  // Through the card fields, a card that already has a token gets its details sealed for a pending update too.
  const findExisting = merchant.unique_tokens && !input.moto;
  const pending = session !== undefined && findExisting ? await sealDetails(deps, merchant, { pendingFingerprint: fingerprint }, card, now) : undefined;
  const declines = session === undefined ? undefined : deps.declines.counters({ sessionId: session.id, clientIp: write.source.clientIp });

  const args = {
    merchant_id: merchant.id,
    token: record.token,
    reusable: record.reusable,
    customer: record.customer,
    decline_duplicates: record.decline_duplicates,
    card: cardDetails(card, fingerprint, sealed),
    expires_at: record.expires_at,
    created_at: record.created_at,
    ciphertext_hash: replayKey(input.ciphertext),
    ciphertext_keep_until: replayRecordUntil(deps.ciphertextPolicy, now),
    find_existing: findExisting,
    pending_card_sealed: pending?.card.card_sealed ?? null,
    pending_card_key_sealed: pending?.card.card_key_sealed ?? null,
    pending_cvc_sealed: pending?.cvc?.cvc_sealed ?? null,
    pending_expires_at: pending === undefined ? null : new Date(now + PENDING_LIFETIME_MS),
    session_id: session?.id ?? null,
    publishable_key: session?.publishableKey ?? null,
    session_limit: SESSION_TOKEN_LIMIT,
    shopper_ip: session === undefined ? null : write.source.clientIp,
    decline_keys: declines?.keys ?? null,
    decline_limits: declines?.limits ?? null,
    decline_window: deps.declines.window(now),
    idempotency_scope: write.claim?.scope ?? null,
    idempotency_key: write.claim?.key ?? null,
    // The response the Idempotency-Key's record keeps: without a key, nothing keeps it.
    response_status: write.claim === undefined ? null : created.status,
    response_body: write.claim === undefined ? null : write.claim.sealBody === undefined ? created.body : write.claim.sealBody(created.body),
    // Its audit entries, written by the same statement.
    actor: write.actor,
    audit_id: newId('evt'),
    verification_audit_id: verification === undefined ? null : newId('evt'),
    verification_outcome: verification?.status ?? null,
    verification_code: verification?.decline_code ?? null,
    client_ip: write.source.clientIp,
    request_id: write.source.requestId,
    moto: record.moto,
    kid: kid ?? null,
    ...statementClaim(write.claim),
    // This process provisions the token's background network token itself once the write commits (so not within a
    // caller's transaction): no job row for it (docs/decisions.md, "Background network tokens without a job"). Only
    // for a merchant with network tokens on, as this process last read it: the statement then pays for the flag's
    // settings, and a merchant the cached row is stale for gets the trigger's job instead, as before.
    ...(deps.networkTokens !== undefined && merchant.network_tokens ? { network_token_in_memory: true } : {}),
  };
  const write_ = async (q: Queryable, a: Record<string, unknown> = args) =>
    (await callFunction<string>(q, 'tessera_create_token', a).catch((error: unknown) => refusal(error, deps))).rows[0]!.result;
  // A statement of its own: it may go with the tokenizations that arrive while another runs (see TokenStatements).
  const writeAlone = async () =>
    deps.tokenStatements === undefined ? write_(deps.db) : deps.tokenStatements.create(args).catch((error: unknown) => refusal(error, deps));

  const made: TokenOutcome = { token: record, existing: false, ...(verification === undefined ? {} : { verification }) };
  const settle = async (tx: Queryable, outcome: string): Promise<Settled> => {
    if (outcome.startsWith('replayed:')) {
      const [status, ...body] = outcome.slice('replayed:'.length).split(':');
      return { response: { status: Number(status), body: body.join(':') }, outcome: made, replayed: true };
    }
    if (outcome.startsWith('refused:')) {
      const state = outcome.slice('refused:'.length);
      return refusal(Object.assign(new Error(`tessera_create_token refused with ${state}`), { code: state }), deps);
    }
    if (outcome.startsWith('pending:')) {
      // The answer the statement stored names the card's token (tessera_create_token replaced the name the same way).
      const token = outcome.slice('pending:'.length);
      return { response: { status: created.status, body: created.body.replaceAll(record.token, token) }, outcome: { ...made, token: { ...record, token } } };
    }
    if (outcome.startsWith('created:')) return { response: created, outcome: made, networkToken: outcome.slice('created:'.length) };
    if (!outcome.startsWith('existing:')) return { response: created, outcome: made };
    const token = outcome.slice('existing:'.length);
    const existing = await refreshExisting(tx, merchant, token, input, card, await sealDetails(deps, merchant, { token }, card, now, tx));
    const reused: TokenOutcome = { token: existing, existing: true, ...(verification === undefined ? {} : { verification }) };
    const response = write.render(reused);
    await recordResponse(tx, write.claim, response);
    // Last: an audit entry locks its merchant's chain until commit.
    for (const entry of reuseEntries(verification, existing)) {
      await deps.audit.record({ merchantId: merchant.id, actor: write.actor, token: existing.token, ...write.source, ...entry }, tx);
    }
    return { response, outcome: reused };
  };

  return {
    fingerprint,
    batchItem: {
      token: args.token,
      reusable: args.reusable,
      customer: args.customer,
      decline_duplicates: args.decline_duplicates,
      card: args.card.json(),
      expires_at: args.expires_at,
      created_at: args.created_at,
      ciphertext_hash: args.ciphertext_hash.toString('hex'),
      ciphertext_keep_until: args.ciphertext_keep_until,
      audit_id: args.audit_id,
    },
    settle,
    async write(within) {
      // In a caller's transaction, the background network token would be provisioned before it commits: a job's.
      const writeArgs = within === undefined ? args : { ...args, network_token_in_memory: false };
      // Unique tokens from a merchant server may refresh the card's token: a transaction around the statement.
      if (findExisting && session === undefined) {
        const run = async (tx: Queryable) => settle(tx, await write_(tx, writeArgs));
        return within === undefined ? deps.db.transaction(run) : run(within);
      }
      if (within !== undefined) return settle(within, await write_(within, writeArgs));
      return settle(deps.db, await writeAlone());
    },
  };
}

/** `tessera_create_token`'s arguments that have it claim the Idempotency-Key itself (see `IdempotencyStore.runInStatement`). */
function statementClaim(claim: IdempotencyClaim | undefined): Record<string, unknown> {
  const inStatement = claim?.inStatement;
  if (inStatement === undefined) return {};
  return {
    idempotency_request_hash: inStatement.requestHash,
    idempotency_reference: claim!.reference,
    idempotency_claimed_by: inStatement.claimedBy,
    idempotency_keep_seconds: inStatement.keepSeconds,
    idempotency_abandoned_seconds: inStatement.abandonedSeconds,
  };
}

/** `verify: true`: the merchant server asks for an account verification as it tokenizes; a decline counts against the card. */
async function verify(deps: CardServiceDeps, merchant: Merchant, fingerprint: string, card: Card, claim: IdempotencyClaim | undefined): Promise<Verification> {
  const source = { merchantId: merchant.id, fingerprint, sessionId: null, clientIp: null };
  await deps.declines.check(deps.db, source);
  const verification = await verifyAccount(deps.acquirer, card, claim);
  if (verification.status === 'failed') await deps.declines.record(deps.db, source);
  return verification;
}

/**
 * Unique tokens, from a merchant server: the card's live token, with its
 * expiry, name, address and CVC refreshed from this tokenization (which also
 * voids details a shopper typed and nobody proved).
 */
async function refreshExisting(
  tx: Queryable,
  merchant: Merchant,
  token: string,
  input: CreateTokenInput,
  card: Card,
  sealed: SealedDetails,
): Promise<TokenRecord> {
  await tx.query('delete from token_pending_cards where merchant_id = $1 and token = $2', [merchant.id, token]);
  const { rows } = await tx.query<{ record: unknown }>(
    `update tokens set
       exp_month = $3, exp_year = $4,
       cardholder_name = coalesce($5, cardholder_name),
       card_sealed = $6, card_key_sealed = $7, data_key_version = $8,
       cvc_sealed = coalesce($9, cvc_sealed),
       cvc_bucket = case when $9::bytea is null then cvc_bucket else $10 end,
       cvc_expires_at = case when $9::bytea is null then cvc_expires_at else $11 end,
       reusable = reusable or $12,
       expires_at = case when reusable or $12 then null else expires_at end,
       decline_duplicates = decline_duplicates or $13,
       updated_at = now()
     where merchant_id = $1 and token = $2
     returning ${TOKEN_RECORD}`,
    [
      merchant.id,
      token,
      card.exp_month,
      card.exp_year,
      card.name ?? null,
      sealed.card.card_sealed,
      sealed.card.card_key_sealed,
      sealed.card.data_key_version,
      sealed.cvc?.cvc_sealed ?? null,
      sealed.cvc?.cvc_bucket ?? null,
      sealed.cvc?.cvc_expires_at ?? null,
      input.reusable,
      input.declineDuplicates ?? false,
    ],
  );
  return tokenRecordOf(rows[0]!.record);
}

/** Turns a refusal raised by `tessera_create_token` into its API error; anything else passes through. */
function refusal(error: unknown, deps: Pick<CardServiceDeps, 'declines'>): never {
  const refused = refusalOf(error);
  switch (refused?.refusal) {
    case 'session_exhausted':
      throw sessionExhausted(Number(refused.detail));
    case 'session_invalid':
      throw new VaultError('session_invalid', { param: 'session' });
    case 'token_value_taken':
      throw new VaultError('token_value_taken', { param: 'value' });
    case 'decline_velocity':
      throw deps.declines.refusal();
    case 'replayed_ciphertext':
    case 'duplicate_card':
    case 'unknown_kid':
      throw new VaultError(refused.refusal, { param: 'card' });
    case 'idempotency_mismatch':
      throw new VaultError('idempotency_mismatch');
    case 'idempotency_in_flight':
      throw new VaultError('idempotency_in_flight', { retryAfterSeconds: 1 });
    default:
      throw error;
  }
}

/** The audit entries of a unique token returned again: the reuse (also the token.updated event), and the verification if one ran. */
function reuseEntries(verification: Verification | undefined, refreshed: TokenRecord): Pick<AuditEntry, 'action' | 'outcome' | 'code' | 'event'>[] {
  // The refresh changed the token's expiry, name or card: a token.updated event.
  const entries: Pick<AuditEntry, 'action' | 'outcome' | 'code' | 'event'>[] = [
    { action: 'token.reused', outcome: 'succeeded', event: { type: 'token.updated', data: refreshed } },
  ];
  if (verification !== undefined) {
    entries.push({ action: 'token.verified', outcome: verification.status, code: verification.decline_code ?? undefined });
  }
  return entries;
}
