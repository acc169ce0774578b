/**
 * Faults under load (issue #14): clients tokenize cards and pay with the
 * tokens, each call with an Idempotency-Key and sent again — to whichever
 * node is up — until it gets an answer, while vault nodes are killed with
 * SIGKILL or PostgreSQL is stopped and started. Then every answer the
 * clients received is checked against the store, through a vault of our own
 * opened on it: each 201 token reads back and its card decrypts to the card
 * sent, each acknowledged payment exists once, and nothing a client was not
 * told about is half-done (a token without its event, a payment without its
 * events, an authorization at the acquirer without its payment).
 *
 * Used by test/api/chaos.test.ts (short) and `npm run chaos` (long).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createMerchant, uniqueLetters, type TestMerchant } from './api.ts';
import { generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { CARDS, cardPlaintext, encryptCard, fetchJwks, SANDBOX_CARDS, type CardPlaintext } from './cards.ts';
import type { ThrowawayPostgres } from './postgres.ts';
import { startTestVault, type TestVault } from './vault.ts';
import { startVaultNodes, type VaultNodes } from './vault-nodes.ts';

export type Scenario = 'kill-nodes' | 'restart-postgres' | 'kill-pglite';

export interface ChaosOptions {
  scenario: Scenario;
  /** Clients tokenizing and paying at the same time. */
  clients: number;
  /** Vault nodes on PostgreSQL (at least 2 for kill-nodes); PGlite has one. */
  nodes?: number;
  /** SIGKILLs, for the kill scenarios. */
  kills?: number;
  /** How long PostgreSQL stays down, for restart-postgres. */
  outageMs?: number;
  /** Load before the first fault and after the last. */
  calmMs?: number;
  /** The cluster restart-postgres stops; kill-nodes uses it too. Not needed on PGlite. */
  postgres?: ThrowawayPostgres;
  log?: (line: string) => void;
}

export interface ChaosSummary {
  scenario: Scenario;
  /** Calls the clients made (tokenizations and payments), each with its own Idempotency-Key. */
  operations: number;
  /** Calls that got their answer (201 token; 201 or 402 payment). */
  acknowledged: number;
  /** Acknowledged calls whose effect was found whole in the store. */
  verified: number;
  /** Acknowledged calls whose effect is missing, doubled or broken. */
  lost: number;
  /** Calls still unanswered when the clients stopped trying. */
  unacknowledged: number;
  /** HTTP attempts in all, retries included. */
  attempts: number;
  faults: string[];
  /** While PostgreSQL was down: the answers to requests sent then, and the slowest. */
  outage?: { requests: number; slowestMs: number; statuses: Record<string, number> };
  /** Everything that broke a rule; empty when the run passed. */
  problems: string[];
  seconds: number;
}

/** The answer a call waits for; anything else (no answer, 5xx, 409 in flight) is sent again. */
const FINAL: Record<Operation['kind'], readonly number[]> = { tokenize: [201], pay: [201, 402] };
/** How long a client keeps sending a call again after the faults ended (a claim of a killed node must be taken over by then). */
const SETTLE_MS = 20_000;
const ATTEMPT_TIMEOUT_MS = 10_000;
/** A request sent while PostgreSQL is down must be answered within this (fail closed, not hang). */
export const OUTAGE_ANSWER_MS = 2_000;

interface Operation {
  id: string;
  kind: 'tokenize' | 'pay';
  key: string;
  body: Record<string, unknown>;
  card: CardPlaintext;
  attempts: number;
  final?: { status: number; body: any };
  /** Statuses and failures seen, for the report of an operation that went wrong. */
  seen: string[];
}

interface Attempt {
  sentAt: number;
  answeredAt: number;
  status: number | 'no answer';
  /** Why a request got no answer: the fetch error and its cause's code. */
  failure?: string;
}

/** Approved cards mostly; a decline and the card whose first answer the acquirer loses keep those paths busy too. */
const CARD_MIX: { number: string; cvc: string }[] = [
  CARDS.visa,
  CARDS.mastercard,
  CARDS.visa,
  CARDS.amex,
  { number: SANDBOX_CARDS.generic_decline, cvc: '079' },
  { number: SANDBOX_CARDS.acquirer_error, cvc: '079' },
];

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const problems: string[] = [];
  const faults: string[] = [];
  const storage = options.scenario === 'kill-pglite' ? 'pglite' : 'postgres';
  if (storage === 'postgres' && options.postgres === undefined) throw new TypeError(`${options.scenario} needs a PostgreSQL cluster`);
  const databaseUrl = storage === 'postgres' ? await options.postgres!.createDatabase() : undefined;
  const cluster = await startVaultNodes({
    count: storage === 'pglite' ? 1 : Math.max(2, options.nodes ?? 2),
    name: `chaos-${options.scenario}`,
    databaseUrl,
  });
  const operations: Operation[] = [];
  const attempts: Attempt[] = [];
  let outage: { downAt: number; upAt: number } | undefined;

  try {
    const shop = await createMerchant({ url: cluster.nodes[0]!.url, adminKey: cluster.adminKey }, { name: 'Chaos Shop' });
    const cards = new CardSupply(cluster.nodes[0]!.url);
    let stopping = false;
    const settleBy = () => (stopping ? settleDeadline : Infinity);
    let settleDeadline = Infinity;

    const send = async (operation: Operation): Promise<void> => {
      let backoff = 50;
      while (operation.final === undefined && Date.now() < settleBy()) {
        const live = cluster.live();
        if (live.length === 0) {
          await sleep(50);
          continue;
        }
        const url = cluster.next();
        operation.attempts++;
        const attempt: Attempt = { sentAt: Date.now(), answeredAt: 0, status: 'no answer' };
        attempts.push(attempt);
        try {
          const response = await fetch(`${url}${operation.kind === 'tokenize' ? '/v1/tokens' : '/v1/payments'}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${shop.secretKey}`, 'content-type': 'application/json', 'idempotency-key': operation.key },
            body: JSON.stringify(operation.body),
            signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
          });
          const text = await response.text();
          attempt.answeredAt = Date.now();
          attempt.status = response.status;
          operation.seen.push(String(response.status));
          if (FINAL[operation.kind].includes(response.status)) {
            operation.final = { status: response.status, body: JSON.parse(text) };
            return;
          }
          // 503 (storage down), 409 (in flight), 502 (the acquirer's answer lost): the same call again. Anything else is wrong.
          if (![409, 502, 503].includes(response.status)) {
            problems.push(`${operation.kind} ${operation.id}: unexpected ${response.status} ${text.slice(0, 200)}`);
            return;
          }
        } catch (error) {
          attempt.answeredAt = Date.now();
          const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
          attempt.failure = `${(error as Error).name}: ${cause?.code ?? cause?.message ?? (error as Error).message}`;
          operation.seen.push((error as Error).name);
        }
        await sleep(backoff / 2 + Math.random() * backoff);
        backoff = Math.min(backoff * 2, 400);
      }
    };

    const client = async () => {
      while (!stopping) {
        const card = cardPlaintext(CARD_MIX[Math.floor(Math.random() * CARD_MIX.length)]!);
        const id = uniqueLetters(12);
        const tokenize: Operation = {
          id,
          kind: 'tokenize',
          key: `tok-${id}`,
          body: { card: await cards.take(card), reusable: Math.random() < 0.5, customer: `cus_${id}` },
          card,
          attempts: 0,
          seen: [],
        };
        operations.push(tokenize);
        await send(tokenize);
        if (tokenize.final === undefined || stopping) continue;
        const pay: Operation = {
          id,
          kind: 'pay',
          key: `pay-${id}`,
          body: { token: tokenize.final.body.token, amount: 100 + Math.floor(Math.random() * 9000), currency: 'EUR', capture: true, reference: `ord_${id}` },
          card,
          attempts: 0,
          seen: [],
        };
        operations.push(pay);
        await send(pay);
      }
    };

    const clients = Array.from({ length: options.clients }, client);
    await sleep(options.calmMs ?? 1000);

    if (options.scenario === 'restart-postgres') {
      const pids = cluster.nodes.map((node) => node.process!.child.pid);
      await options.postgres!.stop();
      outage = { downAt: Date.now(), upAt: Infinity };
      faults.push('PostgreSQL stopped');
      log('PostgreSQL stopped');
      await sleep(options.outageMs ?? 3000);
      outage.upAt = Date.now();
      await options.postgres!.start();
      faults.push('PostgreSQL started');
      log('PostgreSQL started again');
      await waitForAcknowledgement(operations, Date.now(), 15_000).catch((error: Error) => problems.push(`after PostgreSQL came back: ${error.message}`));
      const after = cluster.nodes.map((node) => node.process?.child.pid);
      if (after.join() !== pids.join()) problems.push(`a vault node was restarted during the outage (pids ${pids.join()} → ${after.join()})`);
    } else {
      for (let kill = 0; kill < (options.kills ?? 10); kill++) {
        // At a random moment while the vault serves: after it has answered something since its last restart.
        await waitForAcknowledgement(operations, Date.now(), 30_000).catch((error: Error) => problems.push(`before kill ${kill + 1}: ${error.message}`));
        await sleep(Math.random() * 1500);
        const index = Math.floor(Math.random() * cluster.nodes.length);
        await cluster.kill(index, 'SIGKILL');
        faults.push(`SIGKILL node ${index}`);
        log(`kill ${kill + 1}: SIGKILL node ${index}`);
        await cluster.restart(index);
      }
    }

    await sleep(options.calmMs ?? 1000);
    settleDeadline = Date.now() + SETTLE_MS;
    stopping = true;
    await Promise.all(clients);
    log(`load stopped after ${operations.length} operations`);

    // A node only stops when the run kills it: one that exited on its own (an error nobody heard) is a fault of the vault's.
    for (const node of cluster.nodes) {
      const child = node.process?.child;
      if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
        problems.push(`vault node ${node.index} exited on its own (code ${child.exitCode}, signal ${child.signalCode}); see ${node.dataDir}/vault.log`);
      }
    }
    await cluster.close();
    const verifier = await startTestVault({
      storage,
      name: `chaos-verify-${options.scenario}`,
      ...(storage === 'pglite' ? { dataDir: cluster.nodes[0]!.dataDir } : { databaseUrl }),
      env: { TESSERA_MASTER_KEY: cluster.masterKey, TESSERA_ADMIN_KEY: cluster.adminKey },
    });
    try {
      const verified = await verify(verifier, shop, operations, problems);
      const outageSummary = outage === undefined ? undefined : judgeOutage(attempts, outage, problems);
      const acknowledged = operations.filter((operation) => operation.final !== undefined).length;
      return {
        scenario: options.scenario,
        operations: operations.length,
        acknowledged,
        verified,
        lost: acknowledged - verified,
        unacknowledged: operations.length - acknowledged,
        attempts: attempts.length,
        faults,
        ...(outageSummary === undefined ? {} : { outage: outageSummary }),
        problems,
        seconds: Math.round((Date.now() - started) / 100) / 10,
      };
    } finally {
      await verifier.close();
    }
  } finally {
    await cluster.close();
  }
}

/** One line a person can read at the end of a run. */
export function describeSummary(summary: ChaosSummary): string {
  const outage =
    summary.outage === undefined
      ? ''
      : `; while PostgreSQL was down: ${summary.outage.requests} requests, answered ${JSON.stringify(summary.outage.statuses)}, slowest in ${summary.outage.slowestMs} ms`;
  return (
    `chaos ${summary.scenario}: ${summary.operations} operations (${summary.attempts} attempts), ${summary.acknowledged} acknowledged, ` +
    `${summary.verified} verified, lost = ${summary.lost}, ${summary.unacknowledged} unacknowledged; ${summary.faults.length} faults${outage}; ` +
    `${summary.problems.length} problems; ${summary.seconds} s`
  );
}

/**
 * Card JWEs made ahead in batches, to the key the vault published at the
 * start, from one ephemeral key (see encryptMany): encrypting one per call,
 * or asking a node that may be down for its key, would make the clients
 * the thing under test.
 */
class CardSupply {
  readonly #keys: Promise<{ key: JWK; ephemeralKey: CryptoKey }>;
  readonly #ready = new Map<string, string[]>();

  constructor(vaultUrl: string) {
    this.#keys = (async () => {
      const [key] = await fetchJwks(vaultUrl);
      const { privateKey: ephemeralKey } = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
      return { key: key!, ephemeralKey };
    })();
  }

  async take(card: CardPlaintext): Promise<string> {
    let pool = this.#ready.get(card.number);
    if (pool === undefined || pool.length === 0) {
      const keys = await this.#keys;
      pool = await Promise.all(Array.from({ length: 50 }, () => encryptCard('', card, keys)));
      this.#ready.set(card.number, pool);
    }
    return pool.pop()!;
  }
}

/** Resolves once one more call has been acknowledged than when it was called. */
async function waitForAcknowledgement(operations: Operation[], since: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const count = () => operations.filter((operation) => operation.final !== undefined).length;
  const before = count();
  while (Date.now() < deadline) {
    if (count() > before) return;
    await sleep(50);
  }
  throw new Error(`no call was acknowledged within ${timeoutMs} ms of ${new Date(since).toISOString()}`);
}

/** Every request sent while PostgreSQL was down was answered 503 (or refused) within OUTAGE_ANSWER_MS. */
function judgeOutage(attempts: Attempt[], outage: { downAt: number; upAt: number }, problems: string[]) {
  const during = attempts.filter((attempt) => attempt.sentAt >= outage.downAt && attempt.sentAt < outage.upAt);
  const statuses: Record<string, number> = {};
  let slowestMs = 0;
  for (const attempt of during) {
    const answeredIn = attempt.answeredAt - attempt.sentAt;
    slowestMs = Math.max(slowestMs, answeredIn);
    statuses[String(attempt.status)] = (statuses[String(attempt.status)] ?? 0) + 1;
    if (answeredIn > OUTAGE_ANSWER_MS) problems.push(`a request sent while PostgreSQL was down took ${answeredIn} ms to answer`);
    // Answered after PostgreSQL was back, it may have succeeded; answered during the outage, it must have failed closed.
    if (attempt.answeredAt < outage.upAt && attempt.status !== 503) problems.push(`a request answered while PostgreSQL was down got ${attempt.status}${attempt.failure === undefined ? '' : ` (${attempt.failure})`}`);
  }
  if (during.length === 0) problems.push('no request was sent while PostgreSQL was down');
  return { requests: during.length, slowestMs, statuses };
}

/**
 * Checks the store against the clients' answers; returns how many
 * acknowledged operations were found whole, and adds every broken rule to
 * `problems`.
 */
async function verify(verifier: TestVault, shop: TestMerchant, operations: Operation[], problems: string[]): Promise<number> {
  const { db, deps } = verifier.vault;
  const query = async <Row>(text: string, params: unknown[] = []) => (await db.query<Row>(text, params)).rows;
  const merchant = (await query<any>(
    `select m.id, k.key_sealed as data_key_sealed, m.data_key_version, m.fingerprint_key_sealed
       from merchants m join merchant_data_keys k on k.merchant_id = m.id and k.version = m.data_key_version where m.id = $1`,
    [shop.id],
  ))[0];

  const tokens = await query<{
    token: string;
    customer: string;
    last4: string;
    card_sealed: Uint8Array | null;
    card_key_sealed: Uint8Array | null;
    data_key_version: number;
    reusable: boolean;
    used_at: Date | null;
  }>(`select token, customer, last4, card_sealed, card_key_sealed, data_key_version, reusable, used_at from tokens where merchant_id = $1`, [shop.id]);
  const payments = await query<{ id: string; token: string; status: string; reference: string; amount: number }>(
    `select id, token, status, reference, amount::float8 as amount from payments where merchant_id = $1`,
    [shop.id],
  );
  const events = await query<{ event_type: string; token: string | null; payment_id: string | null }>(
    `select event_type, token, payment_id from audit_events where merchant_id = $1 and event_type is not null`,
    [shop.id],
  );
  const authorizations = await query<{ reference: string; approved: boolean }>('select reference, approved from sandbox_acquirer_authorizations');
  const openClaims = new Set(
    (await query<{ reference: string }>(`select reference from idempotency_keys where scope = $1 and response_status is null`, [`merchant:${shop.id}`])).map(
      (row) => `pay_${row.reference}`,
    ),
  );

  const byCustomer = groupBy(tokens, (token) => token.customer);
  const byReference = groupBy(payments, (payment) => payment.reference);
  const eventsOf = (match: (event: (typeof events)[number]) => boolean) => events.filter(match).map((event) => event.event_type).sort();
  const cardOf = new Map(operations.filter((operation) => operation.kind === 'tokenize').map((operation) => [`cus_${operation.id}`, operation.card]));

  // Every token in the store is whole, acknowledged or not: its card opens to the card sent, and it has its one event.
  const wholeTokens = new Set<string>();
  for (const token of tokens) {
    const sent = cardOf.get(token.customer);
    const name = `token ${token.token} (${token.customer})`;
    if (sent === undefined) {
      problems.push(`${name}: no client sent it`);
      continue;
    }
    if (token.card_sealed === null) {
      problems.push(`${name}: its card is gone`);
      continue;
    }
    try {
      const opened = await deps.cards.open(merchant, { token: token.token }, token as never);
      if (opened.number !== sent.number) {
        problems.push(`${name}: its card opens to another card`);
        continue;
      }
    } catch (error) {
      problems.push(`${name}: its card does not open (${(error as Error).message})`);
      continue;
    }
    const tokenEvents = eventsOf((event) => event.token === token.token && event.event_type.startsWith('token.'));
    if (tokenEvents.filter((type) => type === 'token.created').length !== 1) problems.push(`${name}: events ${tokenEvents.join(',') || 'none'}`);
    else wholeTokens.add(token.token);
  }

  // Every payment in the store is whole: its authorization at the acquirer, its events, a single-use token spent.
  const approvedAt = new Map(authorizations.map((row) => [row.reference, row.approved]));
  const wholePayments = new Set<string>();
  for (const payment of payments) {
    const name = `payment ${payment.id} (${payment.reference})`;
    const expected = payment.status === 'declined' ? ['payment.declined'] : ['payment.authorized', 'payment.captured'];
    const found = eventsOf((event) => event.payment_id === payment.id);
    if (found.join() !== expected.join()) problems.push(`${name}: events ${found.join(',') || 'none'}, expected ${expected.join(',')}`);
    else if (approvedAt.get(payment.id) !== (payment.status !== 'declined')) problems.push(`${name}: the acquirer's record disagrees`);
    else wholePayments.add(payment.id);
    const token = tokens.find((row) => row.token === payment.token);
    if (token !== undefined && !token.reusable && token.used_at === null) problems.push(`${name}: its single-use token is not spent`);
  }
  // An authorization without its payment is a charge nobody recorded, unless its Idempotency-Key is still open for the retry that records it.
  const paymentIds = new Set(payments.map((payment) => payment.id));
  for (const { reference } of authorizations) {
    if (!paymentIds.has(reference) && !openClaims.has(reference)) problems.push(`authorization ${reference} at the acquirer has no payment`);
  }

  let verified = 0;
  for (const operation of operations) {
    if (operation.kind === 'tokenize') {
      const stored = byCustomer.get(`cus_${operation.id}`) ?? [];
      if (stored.length > 1) problems.push(`tokenize ${operation.id}: ${stored.length} tokens`);
      if (operation.final === undefined) continue;
      const token = operation.final.body.token as string;
      const why =
        stored.length !== 1 || stored[0]!.token !== token
          ? `stored as ${stored.map((row) => row.token).join(',') || 'nothing'}`
          : !wholeTokens.has(token)
            ? 'not whole'
            : await readsBack(verifier, shop, token, operation.card);
      if (why === undefined) verified++;
      else problems.push(`tokenize ${operation.id}: acknowledged ${token}, ${why} (seen ${operation.seen.join(' ')})`);
    } else {
      const stored = byReference.get(`ord_${operation.id}`) ?? [];
      if (stored.length > 1) problems.push(`pay ${operation.id}: ${stored.length} payments`);
      if (operation.final === undefined) continue;
      const id = operation.final.status === 201 ? operation.final.body.id : operation.final.body.error?.payment;
      const status = operation.final.status === 201 ? 'captured' : 'declined';
      if (stored.length === 1 && stored[0]!.id === id && stored[0]!.status === status && wholePayments.has(id)) verified++;
      else problems.push(`pay ${operation.id}: acknowledged ${id} (${status}), not found whole (seen ${operation.seen.join(' ')})`);
    }
  }
  return verified;
}

/** Why the token does not read back through the API as the card sent, or undefined when it does. */
async function readsBack(verifier: TestVault, shop: TestMerchant, token: string, card: CardPlaintext): Promise<string | undefined> {
  const response = await fetch(`${verifier.url}/v1/tokens/${token}`, { headers: { authorization: `Bearer ${shop.secretKey}` } });
  const body = (await response.json()) as { token: string; card: { last4: string } };
  if (response.status !== 200) return `read back ${response.status} ${JSON.stringify(body)}`;
  return body.token === token && body.card.last4 === card.number.slice(-4) ? undefined : `read back as ${body.token} ${body.card.last4}`;
}

function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) groups.set(key(row), [...(groups.get(key(row)) ?? []), row]);
  return groups;
}
