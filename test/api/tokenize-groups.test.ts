/**
 * Tokenizations that arrive while one tokenize statement runs go together
 * as the next one (`TokenStatements`, `tessera_create_tokens`); each must
 * get exactly the answer it would have had alone — its own token, its own
 * refusal, its key's stored response — and a refusal must undo only its
 * own work.
 *
 * To make a group certain, the first tokenize statement is held
 * (the vault's `db.query`, wrapped and called through) until the others
 * wait for the next statement; the statements the vault then sends are
 * recorded, with whether each ran its entries isolated and whether it
 * failed. A group goes first as one transaction and, refused in part,
 * again isolated: one subtransaction an entry.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, countTokens, createMerchant, openSession, uniqueLetters, type ApiResponse, type TestMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard, randomCard } from '../support/cards.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';

describe.each(storageKinds())('tokenizations sent together on %s', (storage) => {
  let vault: TestVault;
  let shop: TestMerchant;
  /** The tokenize statements since `together` began: the tokenizations each carried, isolated or not, failed or not. */
  let sent: { carried: number; isolated: boolean | undefined; failed: boolean }[] = [];
  /** Tokenizations each statement carried, in order, but a group's first try that failed whole (it went again isolated). */
  const statements = () => sent.filter((statement) => !(statement.failed && statement.isolated === false)).map((statement) => statement.carried);
  /** While set, the first tokenize statement waits until the others of this many tokenizations wait behind it. */
  let holdFor: number | undefined;

  const grouping = () => vault.vault.deps.tokenStatements!;

  beforeAll(async () => {
    vault = await startTestVault({ storage, name: 'tokenize-groups' });
    shop = await createMerchant(vault);
    const { db } = vault.vault;
    const query = db.query.bind(db);
    db.query = (async (text: string, params?: readonly unknown[]) => {
      const carried = text.startsWith('select tessera_create_tokens(')
        ? (JSON.parse(String(params![0])) as unknown[]).length
        : text.startsWith('select tessera_create_token(') ? 1 : 0;
      if (carried === 0) return query(text, params);
      const statement = { carried, isolated: carried > 1 ? Boolean(params![1]) : undefined, failed: false };
      sent.push(statement);
      const total = holdFor;
      holdFor = undefined;
      const deadline = Date.now() + 10_000;
      while (total !== undefined && grouping().waiting < total - carried && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      try {
        return await query(text, params);
      } catch (error) {
        statement.failed = true;
        throw error;
      }
    }) as typeof db.query;
  });
  afterAll(() => vault?.close());

  /**
   * Sends the requests at once, holds the first statement until the others
   * wait behind it, and checks that they went in two statements at most,
   * one of them a group — not counting a group's first statement refused
   * whole, which must be followed at once by the same group isolated.
   */
  const together = async (requests: (() => Promise<ApiResponse>)[]): Promise<ApiResponse[]> => {
    sent = [];
    holdFor = requests.length;
    try {
      return await Promise.all(requests.map((send) => send()));
    } finally {
      holdFor = undefined;
      expect(statements().reduce((sum, n) => sum + n, 0)).toBe(requests.length);
      expect(statements().length).toBeLessThanOrEqual(2);
      expect(Math.max(...statements())).toBeGreaterThan(1);
      sent.forEach((statement, i) => {
        if (statement.failed && statement.isolated === false) expect(sent[i + 1]).toEqual({ carried: statement.carried, isolated: true, failed: false });
      });
    }
  };
  const fromServer = (json: object, idempotencyKey?: string) => () =>
    api(vault.url, 'POST', '/v1/tokens', {
      key: shop.secretKey,
      json,
      ...(idempotencyKey === undefined ? {} : { headers: { 'Idempotency-Key': idempotencyKey } }),
    });
  const newCard = (number = randomCard()) => encryptCard(vault.url, cardPlaintext({ number, cvc: '123' }));

  it('carries every argument of tessera_create_token through tessera_create_tokens, so a new one cannot be dropped from grouped tokenizations', async () => {
    const { rows } = await vault.vault.db.query<{ names: string[] }>(
      `select proargnames as names from pg_proc where proname = 'tessera_create_token' and pronamespace = 'public'::regnamespace`,
    );
    expect(rows).toHaveLength(1);
    const parameters = rows[0]!.names.map((name) => name.replace(/^p_/, '')).sort();
    expect(parameters.length).toBeGreaterThan(30);
    const sql = readFileSync(join(import.meta.dirname, '..', '..', 'server', 'storage', 'functions', 'create_tokens.sql'), 'utf8');
    const record = /jsonb_to_recordset\(p_entries\) as x\(([^)]*)\)/.exec(sql)?.[1] ?? '';
    const columns = record.split(',').map((column) => column.trim().split(/\s+/)[0]!).sort();
    const passed = [...sql.matchAll(/\bp_(\w+) => (?:coalesce\()?e\.(\w+)/g)].map(([, name, column]) => (name === column ? name! : `${name} from ${column}`)).sort();
    expect(columns).toEqual(parameters);
    expect(passed).toEqual(parameters);
  });

  it('sends a group none of whose tokenizations is refused as one transaction, without a subtransaction an entry', async () => {
    const numbers = [randomCard(), randomCard(), randomCard(), randomCard()];
    const cards = await Promise.all(numbers.map((number) => newCard(number)));
    const before = await countTokens(vault);

    const made = await together(cards.map((card) => fromServer({ card })));

    expect(made.map((response) => response.status)).toEqual([201, 201, 201, 201]);
    expect(sent.filter((statement) => statement.carried > 1)).toEqual([{ carried: sent.at(-1)!.carried, isolated: false, failed: false }]);
    expect(made.map((response) => response.body.card.last4)).toEqual(numbers.map((number) => number.slice(-4)));
    expect(await countTokens(vault)).toBe(before + 4);
  });

  it('sends a group with a refused tokenization again isolated: the refusal is its answer alone, and the first try left nothing', async () => {
    const used = await Promise.all([newCard(), newCard()]);
    for (const card of used) expect((await fromServer({ card })()).status).toBe(201);
    const numbers = [randomCard(), randomCard()];
    const fresh = await Promise.all(numbers.map((number) => newCard(number)));
    const before = await countTokens(vault);

    // One of the four goes alone while the others gather; at least one replay is in the group.
    const responses = await together([fresh[0]!, used[0]!, used[1]!, fresh[1]!].map((card) => fromServer({ card })));

    expect(responses.map((response) => [response.status, response.body.error?.code])).toEqual([
      [201, undefined],
      [409, 'replayed_ciphertext'],
      [409, 'replayed_ciphertext'],
      [201, undefined],
    ]);
    expect(sent.filter((statement) => statement.carried > 1).map(({ isolated, failed }) => ({ isolated, failed }))).toEqual([
      { isolated: false, failed: true },
      { isolated: true, failed: false },
    ]);
    expect([responses[0]!.body.card.last4, responses[3]!.body.card.last4]).toEqual(numbers.map((number) => number.slice(-4)));
    expect(await countTokens(vault)).toBe(before + 2);
  });

  it('answers each tokenization sent together with its own token, a replayed JWE with 409, and a used Idempotency-Key with its stored response', async () => {
    const usedJwe = await newCard();
    const key = uniqueLetters(16);
    const keyed = { card: await newCard(), customer: 'cus_keyed' };
    const first = await fromServer(keyed, key)();
    expect((await fromServer({ card: usedJwe })()).status).toBe(201);
    expect(first.status).toBe(201);
    const numbers = [randomCard(), randomCard(), randomCard(), randomCard()];
    const cards = await Promise.all(numbers.map((number) => newCard(number)));
    const before = await countTokens(vault);

    const [replayedJwe, replayedKey, ...made] = await together([
      fromServer({ card: usedJwe }),
      fromServer(keyed, key),
      ...cards.map((card, i) => fromServer({ card, customer: `cus_${i}` })),
    ]);

    expect({ status: replayedJwe!.status, code: replayedJwe!.body.error?.code }).toEqual({ status: 409, code: 'replayed_ciphertext' });
    expect(replayedKey!.status).toBe(201);
    expect(replayedKey!.text).toBe(first.text);
    expect(replayedKey!.headers.get('idempotent-replayed')).toBe('true');
    expect(made.map((response) => response.status)).toEqual([201, 201, 201, 201]);
    expect(made.map((response) => [response.body.card.last4, response.body.customer])).toEqual(numbers.map((number, i) => [number.slice(-4), `cus_${i}`]));
    expect(new Set(made.map((response) => response.body.token)).size).toBe(4);
    for (const response of made) {
      const read = await api(vault.url, 'GET', `/v1/tokens/${response.body.token}`, { key: shop.secretKey });
      expect(read.body).toMatchObject(response.body);
    }
    expect(await countTokens(vault)).toBe(before + 4);
  });

  it('counts tokenizations sent together against their session in turn: the one past its 20 tokens gets 429 with Retry-After', async () => {
    const session = await openSession(vault.url, shop);
    await vault.vault.db.query('update sessions set tokens_created = 18 where id = $1', [session]);
    const cards = await Promise.all([newCard(), newCard(), newCard()]);
    const before = await countTokens(vault);

    const responses = await together(cards.map((card) => () => api(vault.url, 'POST', '/v1/tokens', { json: { key: shop.publishableKey, session, card } })));

    expect(responses.map((response) => response.status).sort()).toEqual([201, 201, 429]);
    const refused = responses.find((response) => response.status === 429)!;
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await countTokens(vault)).toBe(before + 2);
    const { rows } = await vault.vault.db.query<{ tokens_created: number }>('select tokens_created from sessions where id = $1', [session]);
    expect(rows[0]!.tokens_created).toBe(20);
  });

  it('makes one token of a card sent twice together with decline_duplicates, and refuses the other with 409 duplicate_card', async () => {
    const [number, other] = [randomCard(), randomCard()];
    const cards = await Promise.all([newCard(number), newCard(number), newCard(other)]);
    const before = await countTokens(vault);

    const responses = await together(cards.map((card) => fromServer({ card, decline_duplicates: true })));

    expect(responses.map((response) => response.status).sort()).toEqual([201, 201, 409]);
    const refused = responses.find((response) => response.status === 409)!;
    expect(refused.body.error.code).toBe('duplicate_card');
    expect(responses.filter((response) => response.status === 201).map((response) => response.body.card.last4).sort()).toEqual(
      [number.slice(-4), other.slice(-4)].sort(),
    );
    expect(await countTokens(vault)).toBe(before + 2);
  });

  // PGlite has one connection: nothing else can hold a lock while its statements wait.
  if (storage === 'postgres') it('writes each merchant’s tokenizations apart: one waiting for its merchant’s audit chain holds up no other merchant’s', async () => {
    const [waiting, other] = [await createMerchant(vault), await createMerchant(vault)];
    const tokenize = async (merchant: TestMerchant) => api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await newCard() } });
    expect((await tokenize(waiting)).status).toBe(201);
    const { db } = vault.vault;
    const { rows } = await db.query<{ chain: string }>('select chain from audit_events where merchant_id = $1 limit 1', [waiting.id]);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const holder = db.transaction(async (tx) => {
      await tx.query('select 1 from audit_chain_heads where chain = $1 for update', [rows[0]!.chain]);
      held();
      await released;
    });
    try {
      await isHeld;
      sent = [];
      let answered = false;
      const blocked = tokenize(waiting).finally(() => (answered = true));
      const deadline = Date.now() + 10_000;
      while (sent.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(statements()).toEqual([1]);

      const meanwhile = await Promise.race([tokenize(other), new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), 10_000))]);

      expect(meanwhile === 'still waiting' ? meanwhile : meanwhile.status).toBe(201);
      expect(answered).toBe(false);
      release();
      await holder;
      expect((await blocked).status).toBe(201);
    } finally {
      release();
      await holder;
    }
  });

  it('answers a card-fields tokenization sent together with others for a card a unique-tokens merchant holds with that card’s token', async () => {
    const unique = await createMerchant(vault, { uniqueTokens: true });
    const number = randomCard();
    const saved = await api(vault.url, 'POST', '/v1/tokens', { key: unique.secretKey, json: { card: await newCard(number) } });
    expect(saved.status).toBe(201);
    const session = await openSession(vault.url, unique);
    const cards = await Promise.all([newCard(number), newCard(), newCard()]);

    const responses = await together(cards.map((card) => () => api(vault.url, 'POST', '/v1/tokens', { json: { key: unique.publishableKey, session, card } })));

    expect(responses.map((response) => response.status)).toEqual([201, 201, 201]);
    expect(responses[0]!.body.token).toBe(saved.body.token);
    expect(responses.slice(1).map((response) => response.body.token)).not.toContain(saved.body.token);
    const { rows } = await vault.vault.db.query<{ n: number }>('select count(*)::int as n from token_pending_cards where token = $1', [saved.body.token]);
    expect(rows[0]!.n).toBe(1);
  });
});
