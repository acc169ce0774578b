import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { passesLuhn } from '../../widget/shared/luhn.ts';
import { Coalescer } from '../lib/coalesce.ts';
import type { Queryable } from '../storage/db.ts';
import { selectFunction } from '../storage/functions.ts';
import { LifecycleRefused, TokenServiceUnavailable, type Cryptogram, type Network, type ProvisionRequest, type ProvisionResult, type TokenService, type TokenState } from './token-service.ts';

/** Outcomes by card number (api.md): every other Visa, Mastercard or Amex number is provisioned at once. */
const INELIGIBLE = '4000000000000010';
const DECLINED = '4000000000000028';
/** Pending for about this long, then active. */
const DELAYED = '4000000000000036';
const DELAY_TO_ACTIVE_MS = 2000;
/** Not in the contract's list: the token service fails every request for it, as during an outage (retries, then `declined`). */
const UNAVAILABLE = '4000000000000044';
/**
 * The sandbox acquirer's outcome cards (4000 0000 0000 0002 declines, …)
 * are ineligible, so their payments still go on the card number and keep
 * their outcome.
 */
const SANDBOX_OUTCOME_CARDS = /^400000000000\d{4}$/;

/** A cryptogram authorizes one payment within this time. */
const CRYPTOGRAM_LIFETIME_MS = 10 * 60_000;

interface NetworkRules {
  /** What makes a request answer an existing token: nothing (a new one each time), or these fields. */
  reuse: 'never' | 'account' | 'account_and_email';
  tokenIdPrefix: string;
  /** The DPAN's range and length, as the network's token BINs would be. */
  dpanPrefix: string;
  dpanLength: number;
  issuers: readonly string[];
}

const RULES: Record<Network, NetworkRules> = {
  visa: { reuse: 'account', tokenIdPrefix: 'vts_', dpanPrefix: '489537', dpanLength: 16, issuers: ['Sandbox Bank', 'Example Credit Union', 'Test Savings'] },
  mastercard: { reuse: 'never', tokenIdPrefix: 'mdes_', dpanPrefix: '520474', dpanLength: 16, issuers: ['Sandbox Bank', 'Example Mutual'] },
  amex: { reuse: 'account_and_email', tokenIdPrefix: 'aets_', dpanPrefix: '374200', dpanLength: 15, issuers: ['American Express'] },
};

interface TokenRow {
  network: Network;
  token_id: string;
  status: TokenState['status'];
  active_at: Date | null;
  token_exp_month: number;
  token_exp_year: number;
  pan_last4: string;
  pan_exp_month: number;
  pan_exp_year: number;
  par: string;
  card_art_id: string;
  issuer_name: string;
}

const TOKEN_COLUMNS = `network, token_id, status, active_at, token_exp_month, token_exp_year, pan_last4, pan_exp_month, pan_exp_year,
  par, card_art_id, issuer_name`;

/** A token a request makes unless the request was answered before (then `make` is false too for cards the network refuses). */
type NewToken =
  | { make: false }
  | ({
      make: true;
      token_id: string;
      requestor: string;
      reuse_key: string | null;
      status: 'pending' | 'active';
      active_at: string | null;
    } & Omit<TokenRow, 'network' | 'token_id' | 'status' | 'active_at'>);

type SandboxRequest = { network: Network; request_id: string } & NewToken;

/**
 * The sandbox networks' side of provisioning requests, for a group of them
 * in one statement (tessera_sandbox_tsp_provision): each request answered
 * before gets its token again; each other that makes a token writes it and
 * the request id it answers from now on. Answers each request's token row,
 * or undefined (answered before: never; refused by the network).
 */
async function provisionRequests(db: Queryable, requests: readonly SandboxRequest[]): Promise<(TokenRow | undefined)[]> {
  const items = requests.map((request, n) => ({ n, ...request }));
  const { rows } = await selectFunction<TokenRow & { n: number }>(db, 'tessera_sandbox_tsp_provision', { requests: JSON.stringify(items) });
  const answers: (TokenRow | undefined)[] = requests.map(() => undefined);
  for (const { n, ...row } of rows) answers[n] ??= row;
  // A token another transaction inserted and committed after this statement began is invisible to its
  // reads (one snapshot per statement), and its insert did nothing: a second statement sees it.
  const missing = requests.flatMap((request, n) => (request.make && answers[n] === undefined ? [{ n, network: request.network, token_id: request.token_id }] : []));
  if (missing.length > 0) {
    const again = await db.query<TokenRow & { n: number }>(
      `select i.n, t.* from jsonb_to_recordset($1::jsonb) as i(n integer, network text, token_id text) cross join lateral (
         select ${prefixed('t')} from sandbox_tsp_tokens t where t.network = i.network and t.token_id = i.token_id limit 1) t`,
      [JSON.stringify(missing)],
    );
    for (const { n, ...row } of again.rows) answers[n] = row;
  }
  return answers;
}

const prefixed = (alias: string) =>
  TOKEN_COLUMNS.split(',')
    .map((column) => `${alias}.${column.trim()}`)
    .join(', ');

/** An issuer-side change the sandbox lets a developer drive (`POST /v1/sandbox/network-tokens/{id}/lifecycle`). */
export type LifecycleChange =
  | { event: 'suspend' | 'resume' | 'delete' }
  | { event: 'pan_update'; exp_month?: number | undefined; exp_year?: number | undefined; pan_last4?: string | undefined };

/**
 * One network's sandbox token service. It stands for the network's system,
 * so it keeps its own state in tables of its own (`sandbox_tsp_*`, written
 * outside the vault's transactions, like the sandbox acquirer) and answers
 * after a simulated latency. Token ids, DPANs and PARs are derived from the
 * sandbox's secret, so the same request always gets the same answer and no
 * DPAN is stored on its side.
 */
export class SandboxTokenService implements TokenService {
  readonly network: Network;
  readonly #db: Queryable;
  readonly #delay: { min: number; max: number };
  readonly #rules: NetworkRules;
  readonly #store: Coalescer<SandboxRequest, TokenRow | undefined>;
  #secret: Promise<Buffer> | undefined;

  /** `store`: the sandbox networks' provisioning statements, shared by the three networks so their requests go together. */
  constructor(network: Network, db: Queryable, delayMs: { min: number; max: number }, store = sandboxStore(db)) {
    this.network = network;
    this.#db = db;
    this.#delay = delayMs;
    this.#rules = RULES[network];
    this.#store = store;
  }

  async provision(request: ProvisionRequest, signal?: AbortSignal): Promise<ProvisionResult> {
    const { number } = request.card;
    const makes = number !== UNAVAILABLE && number !== DECLINED && number !== INELIGIBLE && (number === DELAYED || !SANDBOX_OUTCOME_CARDS.test(number));
    // The network's work is done as the request arrives and answered after the latency: what one claim of
    // provisioning jobs sends at once is one statement here, not two a request.
    const row = await this.#store.call({ network: this.network, request_id: request.requestId, ...(makes ? await this.#token(request) : { make: false }) });
    await this.#latency(signal);
    if (row !== undefined) return this.#state(await this.#settlePending(row));
    if (makes) throw new Error(`the sandbox ${this.network} token service lost the token of request ${request.requestId}`);
    if (number === UNAVAILABLE) throw new TokenServiceUnavailable(`the sandbox ${this.network} token service is unavailable`);
    if (number === DECLINED) return { status: 'declined' };
    return { status: 'ineligible' };
  }

  /** The token this request gets unless it was answered before: its id from the network's reuse rule. */
  async #token(request: ProvisionRequest): Promise<NewToken> {
    const { number } = request.card;
    const panRef = await this.#mac('pan', number);
    const reuseKey =
      this.#rules.reuse === 'never'
        ? null
        : await this.#mac('reuse', request.requestor, panRef, request.accountId ?? '', this.#rules.reuse === 'account_and_email' ? (request.email ?? '').toLowerCase() : '');
    const bin = number.slice(0, 6);
    return {
      make: true,
      token_id: this.#rules.tokenIdPrefix + (await this.#mac('token', reuseKey ?? `request/${request.requestId}`)).slice(0, 24),
      requestor: request.requestor,
      reuse_key: reuseKey,
      status: number === DELAYED ? 'pending' : 'active',
      active_at: number === DELAYED ? new Date(Date.now() + DELAY_TO_ACTIVE_MS).toISOString() : null,
      token_exp_month: request.card.exp_month,
      token_exp_year: Math.max(request.card.exp_year, new Date().getUTCFullYear() + 3),
      pan_last4: number.slice(-4),
      pan_exp_month: request.card.exp_month,
      pan_exp_year: request.card.exp_year,
      // A PAR names the card account, the same for all its tokens.
      par: `${this.network[0]!.toUpperCase()}001${(await this.#mac('par', panRef)).slice(0, 25).toUpperCase()}`,
      card_art_id: `art_${(await this.#mac('art', this.network, bin)).slice(0, 16)}`,
      issuer_name: this.#rules.issuers[parseInt(createHash('sha256').update(bin).digest('hex').slice(0, 8), 16) % this.#rules.issuers.length]!,
    };
  }

  async cryptogram(tokenId: string): Promise<Cryptogram | undefined> {
    await this.#latency();
    const value = randomBytes(20).toString('base64');
    const { rows } = await this.#db.query<{ token_id: string }>(
      `with counted as (
         update sandbox_tsp_tokens set cryptograms = cryptograms + 1 where network = $1 and token_id = $2 and status = 'active' returning token_id
       )
       insert into sandbox_tsp_cryptograms (hash, network, token_id, expires_at)
       select $3, $1, token_id, $4 from counted
       returning token_id`,
      [this.network, tokenId, cryptogramHash(value), new Date(Date.now() + CRYPTOGRAM_LIFETIME_MS)],
    );
    return rows[0] === undefined ? undefined : { cryptogram: value, eci: this.network === 'mastercard' ? '02' : '05' };
  }

  /**
   * The issuer changes the token (suspend, resume, delete, a new card number
   * or expiry), or the vault asks to (suspend, resume, delete); answers the
   * token as it is now.
   */
  async lifecycle(tokenId: string, change: LifecycleChange): Promise<TokenState> {
    const current = await this.#db.query<TokenRow>(`select ${TOKEN_COLUMNS} from sandbox_tsp_tokens where network = $1 and token_id = $2`, [
      this.network,
      tokenId,
    ]);
    const row = current.rows[0];
    if (row === undefined) throw new LifecycleRefused('the network has no such token');
    if (row.status === 'deleted') throw new LifecycleRefused('the token was deleted');
    const status = change.event === 'suspend' ? 'suspended' : change.event === 'delete' ? 'deleted' : change.event === 'resume' ? 'active' : row.status;
    const update: { pan_last4?: string | undefined; exp_month?: number | undefined; exp_year?: number | undefined } = change.event === 'pan_update' ? change : {};
    const { rows } = await this.#db.query<TokenRow>(
      `update sandbox_tsp_tokens set status = $3,
              pan_last4 = coalesce($4, pan_last4), pan_exp_month = coalesce($5, pan_exp_month), pan_exp_year = coalesce($6, pan_exp_year),
              token_exp_month = coalesce($5, token_exp_month), token_exp_year = greatest(token_exp_year, coalesce($6, token_exp_year)),
              updated_at = now()
        where network = $1 and token_id = $2
        returning ${TOKEN_COLUMNS}`,
      [this.network, tokenId, status, update.pan_last4 ?? null, update.exp_month ?? null, update.exp_year ?? null],
    );
    return this.#state(rows[0]!);
  }

  /** A delayed token whose time has come is active from now on. */
  async #settlePending(row: TokenRow): Promise<TokenRow> {
    if (row.status !== 'pending' || row.active_at === null || row.active_at.getTime() > Date.now()) return row;
    const { rows } = await this.#db.query<TokenRow>(
      `update sandbox_tsp_tokens set status = 'active', updated_at = now() where network = $1 and token_id = $2 and status = 'pending'
       returning ${TOKEN_COLUMNS}`,
      [row.network, row.token_id],
    );
    return rows[0] ?? { ...row, status: 'active' };
  }

  async #state(row: TokenRow): Promise<TokenState> {
    const pendingFor = row.status === 'pending' && row.active_at !== null ? Math.max(0, row.active_at.getTime() - Date.now()) : undefined;
    return {
      status: row.status,
      tokenId: row.token_id,
      dpan: await this.#dpan(row.token_id),
      token_exp_month: row.token_exp_month,
      token_exp_year: row.token_exp_year,
      pan_last4: row.pan_last4,
      pan_exp_month: row.pan_exp_month,
      pan_exp_year: row.pan_exp_year,
      par: row.par,
      card_art_id: row.card_art_id,
      issuer_name: row.issuer_name,
      ...(pendingFor === undefined ? {} : { retryAfterMs: pendingFor }),
    };
  }

  /** The token's number: in the network's token range, Luhn-valid, derived from the token id under the sandbox's secret. */
  async #dpan(tokenId: string): Promise<string> {
    const mac = Buffer.from(await this.#mac('dpan', this.network, tokenId), 'hex');
    let body = this.#rules.dpanPrefix;
    for (let i = 0; body.length < this.#rules.dpanLength - 2; i++) body += String(mac[i]! % 10);
    // The digit before the check digit is always 8, so the token's last four never equal a four-digit CVC
    // (the test suite's leak scans flag any value that is exactly its Amex test CVC).
    body += '8';
    for (let check = 0; check < 10; check++) if (passesLuhn(body + check)) return body + check;
    throw new Error('unreachable: one check digit always passes');
  }

  async #latency(signal?: AbortSignal): Promise<void> {
    const ms = randomInt(this.#delay.min, this.#delay.max + 1);
    if (ms > 0) await sleep(ms, undefined, signal === undefined ? undefined : { signal });
  }

  async #mac(...parts: string[]): Promise<string> {
    this.#secret ??= sandboxSecret(this.#db);
    return createHmac('sha256', await this.#secret).update(parts.join('\u0000')).digest('hex');
  }
}

/** At most this many provisioning requests in one statement of the sandbox's. */
const SANDBOX_GROUP = 32;

/** `before`: awaited before each statement (on PGlite, the vault's requests in flight: the sandbox shares its database). */
const sandboxStore = (db: Queryable, before?: () => Promise<void>) =>
  new Coalescer((requests: readonly SandboxRequest[]) => provisionRequests(db, requests), { max: SANDBOX_GROUP, turn: true, before });

export function sandboxTokenServices(
  db: Queryable,
  delayMs: { min: number; max: number },
  options: { before?: (() => Promise<void>) | undefined } = {},
): Record<Network, SandboxTokenService> {
  const store = sandboxStore(db, options.before);
  return {
    visa: new SandboxTokenService('visa', db, delayMs, store),
    mastercard: new SandboxTokenService('mastercard', db, delayMs, store),
    amex: new SandboxTokenService('amex', db, delayMs, store),
  };
}

/**
 * The acquirer's side of a network-token payment: the network checks the
 * cryptogram, which is good for one authorization only.
 */
export async function redeemSandboxCryptogram(db: Queryable, cryptogram: string): Promise<boolean> {
  const { rowCount } = await db.query('delete from sandbox_tsp_cryptograms where hash = $1 and expires_at > now()', [cryptogramHash(cryptogram)]);
  return rowCount > 0;
}

const cryptogramHash = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** The sandbox's one secret, made on first use by whichever vault process gets there first. */
async function sandboxSecret(db: Queryable): Promise<Buffer> {
  await db.query('insert into sandbox_tsp_secret (secret) values ($1) on conflict do nothing', [randomBytes(32)]);
  const { rows } = await db.query<{ secret: Uint8Array }>('select secret from sandbox_tsp_secret');
  return Buffer.from(rows[0]!.secret);
}
