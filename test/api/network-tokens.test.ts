/**
 * Network tokens (api.md, "Network tokens (sandbox token service)"): the
 * sandbox token service of each network, background provisioning for a
 * merchant that opts in, the explicit endpoint in sync and async mode, each
 * network's token-id reuse, the outcomes by card number, payments on the
 * network token with a fresh cryptogram, and the issuer's lifecycle changes
 * with their events. The network token number and cryptograms never show.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createMerchant, type TestMerchant } from '../support/api.ts';
import { CARDS, cardPlaintext, encryptCard, nextYear, numberedCard } from '../support/cards.ts';
import { encryptMany } from '../support/many.ts';
import { dumpTables } from '../support/leaks.ts';
import { startTestVault, storageKinds, type TestVault } from '../support/vault.ts';
import { MerchantDirectory } from '../../server/merchants/service.ts';

const ACTIVE = { visa: '4242424242424242', mastercard: '5555555555554444', amex: '378282246310005' };
const INELIGIBLE = '4000000000000010';
const DECLINED = '4000000000000028';
const DELAYED = '4000000000000036';
/** The sandbox token service fails every request for it (an outage). */
const UNAVAILABLE = '4000000000000044';

describe.each(storageKinds())('network tokens on %s', (storage) => {
  let vault: TestVault;

  beforeAll(async () => {
    vault = await startTestVault({
      storage,
      name: 'network-tokens',
      env: { TESSERA_SANDBOX_TSP_DELAY_MS: '0-20', TESSERA_NETWORK_TOKEN_RETRY_SCHEDULE: '10ms' },
    });
  });
  afterAll(() => vault?.close());

  async function tokenize(merchant: TestMerchant, number: string): Promise<string> {
    const cvc = number.length === 15 ? '1234' : '123';
    const card = await encryptCard(vault.url, cardPlaintext({ number, cvc }, { exp_month: 12, exp_year: nextYear() }));
    const made = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card, reusable: true } });
    expect(made.status, made.text).toBe(201);
    return made.body.token;
  }

  const ask = (merchant: TestMerchant, token: string, body: Record<string, unknown>) =>
    api(vault.url, 'POST', `/v1/tokens/${token}/network-token`, { key: merchant.secretKey, json: body });

  const lifecycle = (merchant: TestMerchant, id: string, body: Record<string, unknown>) =>
    api(vault.url, 'POST', `/v1/sandbox/network-tokens/${id}/lifecycle`, { key: merchant.secretKey, json: body });

  const pay = async (merchant: TestMerchant, token: string) => {
    const paid = await api(vault.url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token, amount: 1999, currency: 'EUR' } });
    expect(paid.status, paid.text).toBe(201);
    return paid.body;
  };

  async function events(merchant: TestMerchant, type: string): Promise<any[]> {
    const listed = await api(vault.url, 'GET', '/v1/events?limit=100', { key: merchant.secretKey });
    expect(listed.status, listed.text).toBe(200);
    return listed.body.data.filter((e: { type?: string }) => e.type === type);
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(25);
    }
  }

  it('requests a network token in the background for each new reusable token once the merchant turns network_tokens on', async () => {
    const merchant = await createMerchant(vault);
    const before = await tokenize(merchant, ACTIVE.visa);
    const on = await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: true } });
    expect(on.status, on.text).toBe(200);
    expect(on.body.network_tokens).toBe(true);

    const card = await encryptCard(vault.url, cardPlaintext(CARDS.mastercard));
    const made = await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card, reusable: true } });
    expect(made.status, made.text).toBe(201);
    expect(made.body.network_token).toEqual({ status: 'pending' });

    const settled = await until('the network token', async () => {
      const read = await api(vault.url, 'GET', `/v1/tokens/${made.body.token}`, { key: merchant.secretKey });
      return read.body.network_token?.status === 'active' ? read.body.network_token : undefined;
    });
    expect(settled).toEqual({
      id: expect.stringMatching(/^ntok_/),
      object: 'network_token',
      token: made.body.token,
      network: 'mastercard',
      token_id: expect.stringMatching(/^mdes_/),
      status: 'active',
      token_last4: expect.stringMatching(/^\d{4}$/),
      token_exp_month: 12,
      token_exp_year: expect.any(Number),
      pan_last4: '4444',
      par: expect.stringMatching(/^M001[A-Z0-9]{25}$/),
      card_art_id: expect.stringMatching(/^art_/),
      issuer: { name: expect.any(String) },
      correlation_id: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    // Tokens made before the setting, and single-use ones, get none.
    const single = await api(vault.url, 'POST', '/v1/tokens', {
      key: merchant.secretKey,
      json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.visa)), reusable: false },
    });
    expect(single.body.network_token).toBeUndefined();
    expect((await api(vault.url, 'GET', `/v1/tokens/${before}`, { key: merchant.secretKey })).body.network_token).toBeNull();
    const created = await events(merchant, 'network_token.created');
    expect(created.map((e) => e.data.object.id)).toEqual([settled.id]);
  });

  it('provisions a background network token in the process that made its token, without a job, and hands one the network holds pending to a job', async () => {
    const merchant = await createMerchant(vault);
    expect((await api(vault.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: true } })).status).toBe(200);
    const active = await tokenize(merchant, ACTIVE.amex);
    const delayed = await tokenize(merchant, DELAYED);
    const created = async (token: string) => (await events(merchant, 'network_token.created')).find((e) => e.data.object.token === token);
    const first = await until('the active one settled', () => created(active));
    expect(first.data.object).toMatchObject({ status: 'active', network: 'amex' });
    const second = await until('the delayed one settled', () => created(delayed), 30_000);
    expect(second.data.object).toMatchObject({ status: 'active', network: 'visa' });

    const { rows } = await vault.vault.db.query<{ token: string; in_memory: boolean; jobs: number }>(
      `select n.token, n.provisioning_since is not null as in_memory,
              (select count(*)::int from jobs j where j.kind = 'network_token.provision' and j.key = n.id) as jobs
         from network_tokens n where n.merchant_id = $1 order by n.token = $2 desc`,
      [merchant.id, active],
    );
    expect(rows).toEqual([
      // Begun and settled in memory: never a job.
      { token: active, in_memory: true, jobs: 0 },
      // The network held it pending: handed to a job (out of the job sweep's sight), which settled it.
      { token: delayed, in_memory: false, jobs: 1 },
    ]);
  });

  it('holds at most TESSERA_NETWORK_TOKEN_CONCURRENCY background network tokens at the network and TESSERA_NETWORK_TOKEN_MAX_WAITING waiting in a process; the next goes to a job at once', async () => {
    // One at the network at a time, for 3 s each, and one waiting: of four tokens made quickly, two at most stay in memory.
    const slow = await startTestVault({
      storage,
      name: 'network-tokens-limits',
      env: { TESSERA_SANDBOX_TSP_DELAY_MS: '3000', TESSERA_NETWORK_TOKEN_CONCURRENCY: '1', TESSERA_NETWORK_TOKEN_MAX_WAITING: '1' },
    });
    try {
      const merchant = await createMerchant(slow);
      expect((await api(slow.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: true } })).status).toBe(200);
      const card = () => encryptCard(slow.url, cardPlaintext({ number: ACTIVE.mastercard, cvc: '123' }, { exp_month: 12, exp_year: nextYear() }));
      const tokens: string[] = [];
      for (let i = 0; i < 4; i++) {
        const made = await api(slow.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await card(), reusable: true } });
        expect(made.status, made.text).toBe(201);
        tokens.push(made.body.token);
      }
      const { rows } = await slow.vault.db.query<{ token: string; in_memory: boolean; jobs: number }>(
        `select n.token, n.provisioning_since is not null as in_memory,
                (select count(*)::int from jobs j where j.kind = 'network_token.provision' and j.key = n.id) as jobs
           from network_tokens n where n.merchant_id = $1`,
        [merchant.id],
      );
      const byToken = new Map(rows.map((r) => [r.token, r]));
      expect(tokens.map((t) => byToken.has(t))).toEqual([true, true, true, true]);
      // The first found nothing waiting: in memory. Each is in memory or has its job, never both, never neither.
      expect(byToken.get(tokens[0]!)).toMatchObject({ in_memory: true, jobs: 0 });
      for (const row of rows) expect(row.in_memory ? row.jobs : row.jobs - 1).toBe(0);
      const inMemory = rows.filter((r) => r.in_memory).length;
      expect(inMemory).toBeLessThanOrEqual(2);

      // All four settle, one network_token.created each.
      const created = await until(
        'four network_token.created',
        async () => {
          const listed = await api(slow.url, 'GET', '/v1/events?limit=100', { key: merchant.secretKey });
          const found = listed.body.data.filter((e: { type?: string }) => e.type === 'network_token.created');
          return found.length >= 4 ? found : undefined;
        },
        45_000,
      );
      expect(created.map((e: any) => e.data.object.token).sort()).toEqual([...tokens].sort());
      expect(created.every((e: any) => e.data.object.status === 'active')).toBe(true);
    } finally {
      await slow.close();
    }
  }, 90_000);

  it('gives a job the background network token a process began in memory and left for longer than a lease (it died), which settles it', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.visa);
    // What a process that died between its tokenization's commit and its network token's settlement leaves.
    const id = `ntok_${'d1ed'.repeat(8)}`;
    await vault.vault.db.query(
      `insert into network_tokens (id, merchant_id, token, network, status, requested_by, actor, provisioning_since)
       values ($1, $2, $3, 'visa', 'pending', 'background', 'test', now() - interval '1 hour')`,
      [id, merchant.id, token],
    );
    const settled = await until('network_token.created', async () => (await events(merchant, 'network_token.created')).find((e) => e.data.object.id === id));
    expect(settled.data.object).toMatchObject({ status: 'active', network: 'visa', token });
    const { rows } = await vault.vault.db.query<{ state: string; in_memory: boolean }>(
      `select j.state, n.provisioning_since is not null as in_memory from jobs j join network_tokens n on n.id = j.key
        where j.kind = 'network_token.provision' and j.key = $1`,
      [id],
    );
    expect(rows).toEqual([{ state: 'done', in_memory: false }]);
  });

  it('answers a sync request with the network token, and an async one with 202 and then network_token.created carrying its correlation id', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.visa);
    const sync = await ask(merchant, token, { mode: 'sync', correlation_id: 'corr-sync', account_id: 'acct_9', email: 'ada@example.com' });
    expect(sync.status, sync.text).toBe(201);
    expect(sync.body).toMatchObject({ status: 'active', network: 'visa', pan_last4: '4242', correlation_id: 'corr-sync' });

    const other = await tokenize(merchant, ACTIVE.amex);
    const async = await ask(merchant, other, { mode: 'async', correlation_id: 'corr-async', account_id: 'acct_9' });
    expect(async.status, async.text).toBe(202);
    expect(async.body).toMatchObject({ status: 'pending', token_id: null, correlation_id: 'corr-async' });
    const event = await until('network_token.created', async () => (await events(merchant, 'network_token.created')).find((e) => e.data.object.id === async.body.id));
    expect(event.data.object).toMatchObject({ status: 'active', network: 'amex', correlation_id: 'corr-async', token_id: expect.stringMatching(/^aets_/) });
  });

  it('reuses token ids as each network does: Mastercard never, Visa per card and account, Amex per card, account and email', async () => {
    const merchant = await createMerchant(vault);
    const tokenIdOf = async (token: string, body: Record<string, unknown>) => {
      const answer = await ask(merchant, token, body);
      expect(answer.status, answer.text).toBe(201);
      return answer.body.token_id as string;
    };
    const mc = await tokenize(merchant, ACTIVE.mastercard);
    expect(await tokenIdOf(mc, { account_id: 'a' })).not.toBe(await tokenIdOf(mc, { account_id: 'a' }));

    // Two vault tokens of one Visa card (no unique tokens): the card and account decide, not the vault token.
    const [visa1, visa2] = [await tokenize(merchant, ACTIVE.visa), await tokenize(merchant, ACTIVE.visa)];
    const visaA = await tokenIdOf(visa1!, { account_id: 'a', email: 'x@example.com' });
    expect(await tokenIdOf(visa2!, { account_id: 'a', email: 'y@example.com' })).toBe(visaA);
    expect(await tokenIdOf(visa1!, { account_id: 'b' })).not.toBe(visaA);

    const amex = await tokenize(merchant, ACTIVE.amex);
    const amexA = await tokenIdOf(amex, { account_id: 'a', email: 'x@example.com' });
    expect(await tokenIdOf(amex, { account_id: 'a', email: 'X@example.com' })).toBe(amexA);
    expect(await tokenIdOf(amex, { account_id: 'a', email: 'y@example.com' })).not.toBe(amexA);

    // Another merchant is another token requestor.
    const elsewhere = await createMerchant(vault);
    const theirs = await tokenize(elsewhere, ACTIVE.visa);
    const answer = await ask(elsewhere, theirs, { account_id: 'a' });
    expect(answer.body.token_id).not.toBe(visaA);
  });

  it('gives one Visa token id to many requests for one card and account made at once', async () => {
    const merchant = await createMerchant(vault);
    const tokens = await Promise.all([0, 1, 2, 3].map(() => tokenize(merchant, '4111111111111111')));
    const answers = await Promise.all(tokens.map((token) => ask(merchant, token, { account_id: 'acct_1' })));
    for (const answer of answers) expect(answer.status, answer.text).toBe(201);
    expect(new Set(answers.map((a) => a.body.token_id)).size).toBe(1);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(4);
  });

  it('settles the sandbox outcomes by card number: ineligible, declined, and delayed (202 pending, then active)', async () => {
    const merchant = await createMerchant(vault);
    const ineligible = await ask(merchant, await tokenize(merchant, INELIGIBLE), {});
    expect(ineligible.status).toBe(201);
    expect(ineligible.body).toMatchObject({ status: 'ineligible', token_id: null, token_last4: null });
    const declined = await ask(merchant, await tokenize(merchant, DECLINED), {});
    expect(declined.body).toMatchObject({ status: 'declined', token_id: null });

    const delayed = await ask(merchant, await tokenize(merchant, DELAYED), { correlation_id: 'slow-1' });
    expect(delayed.status, delayed.text).toBe(202);
    expect(delayed.body).toMatchObject({ status: 'pending', token_id: expect.stringMatching(/^vts_/) });
    const event = await until('the delayed token', async () => (await events(merchant, 'network_token.created')).find((e) => e.data.object.id === delayed.body.id));
    expect(event.data.object).toMatchObject({ status: 'active', correlation_id: 'slow-1', token_id: delayed.body.token_id });
    const created = await events(merchant, 'network_token.created');
    expect(created.map((e) => e.data.object.status).sort()).toEqual(['active', 'declined', 'ineligible']);
  });

  it('pays on an active network token with a fresh cryptogram each time, and on the card number once it is suspended or deleted', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.visa);
    const ntok = (await ask(merchant, token, { account_id: 'acct_pay' })).body;
    expect(ntok.status).toBe('active');

    expect((await pay(merchant, token)).credential).toBe('network_token');
    expect((await pay(merchant, token)).credential).toBe('network_token');
    const issued = await vault.vault.db.query<{ cryptograms: number }>('select cryptograms from sandbox_tsp_tokens where token_id = $1', [ntok.token_id]);
    expect(issued.rows[0]!.cryptograms).toBe(2);
    // Each was used by its authorization: none is left to use again.
    expect((await vault.vault.db.query('select 1 from sandbox_tsp_cryptograms where token_id = $1', [ntok.token_id])).rowCount).toBe(0);

    const suspended = await lifecycle(merchant, ntok.id, { event: 'suspend' });
    expect(suspended.status, suspended.text).toBe(200);
    expect(suspended.body.status).toBe('suspended');
    expect((await pay(merchant, token)).credential).toBe('pan');
    expect((await lifecycle(merchant, ntok.id, { event: 'resume' })).body.status).toBe('active');
    expect((await pay(merchant, token)).credential).toBe('network_token');
    expect((await lifecycle(merchant, ntok.id, { event: 'delete' })).body.status).toBe('deleted');
    expect((await pay(merchant, token)).credential).toBe('pan');
    expect((await lifecycle(merchant, ntok.id, { event: 'resume' })).body.error.code).toBe('network_token_unavailable');

    const updates = await events(merchant, 'network_token.updated');
    expect(updates.map((e) => e.data.object.status)).toEqual(['deleted', 'active', 'suspended']);
    const dpan = await vault.vault.db.query('select 1 from network_tokens where id = $1 and dpan_sealed is null', [ntok.id]);
    expect(dpan.rowCount).toBe(1);
  });

  it('refreshes the vault token on pan_update (an account updater) with network_token.updated and token.updated', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.mastercard);
    const ntok = (await ask(merchant, token, {})).body;
    const year = nextYear() + 3;
    const updated = await lifecycle(merchant, ntok.id, { event: 'pan_update', pan_last4: '9876', exp_month: 4, exp_year: year });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body).toMatchObject({ status: 'active', pan_last4: '9876', token_exp_month: 4 });
    const read = await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: merchant.secretKey });
    expect(read.body.card).toMatchObject({ last4: '9876', exp_month: 4, exp_year: year });
    expect((await events(merchant, 'token.updated')).map((e) => e.data.object.card.last4)).toEqual(['9876']);
    expect((await events(merchant, 'network_token.updated')).map((e) => e.data.object.pan_last4)).toEqual(['9876']);
  });

  it('seals the network token number again after a data key roll, so payments keep using it once the old key is destroyed', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.visa);
    expect((await ask(merchant, token, { account_id: 'roll' })).body.status).toBe('active');
    const rolled = await api(vault.url, 'POST', `/v1/merchants/${merchant.id}/data-key/roll`, { key: vault.adminKey, json: {} });
    expect(rolled.status, rolled.text).toBe(201);
    let done = await api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: {} });
    while (done.body.remaining > 0) done = await api(vault.url, 'POST', '/v1/keys/reencrypt', { key: vault.adminKey, json: {} });
    const versions = await vault.vault.db.query<{ version: number }>('select version from merchant_data_keys where merchant_id = $1', [merchant.id]);
    expect(versions.rows).toEqual([{ version: 2 }]);
    expect((await pay(merchant, token)).credential).toBe('network_token');
  });

  it('refuses bad requests with a clear code and stores nothing', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.visa);
    const count = async () => (await vault.vault.db.query<{ n: number }>('select count(*)::int as n from network_tokens where merchant_id = $1', [merchant.id])).rows[0]!.n;
    expect((await ask(merchant, token, { mode: 'later' })).body.error.code).toBe('parameter_invalid');
    expect((await ask(merchant, token, { email: 'not an email' })).body.error.code).toBe('parameter_invalid');
    expect((await ask(merchant, token, { account_id: '4242424242424242' })).body.error.code).toBe('card_number_not_allowed');
    expect((await ask(merchant, 'tok_nope', {})).status).toBe(404);
    const other = await createMerchant(vault);
    expect((await ask(other, token, {})).body.error.code).toBe('token_not_found');
    expect(await count()).toBe(0);
    const ntok = (await ask(merchant, token, {})).body;
    expect((await lifecycle(merchant, ntok.id, { event: 'pan_update' })).body.error.code).toBe('parameter_invalid');
    expect((await lifecycle(merchant, ntok.id, { event: 'suspend', pan_last4: '1234' })).body.error.code).toBe('parameter_invalid');
    expect((await lifecycle(other, ntok.id, { event: 'suspend' })).body.error.code).toBe('network_token_not_found');
  });

  it('requests a network token for each reusable token of a batch with network_tokens, spread across issuers, and counts them in token_batch.completed', async () => {
    const merchant = await createMerchant(vault);
    const year = nextYear();
    // Uploaded in BIN order: eight Visa cards, then eight Mastercard ones.
    const numbers = [...Array.from({ length: 8 }, (_, n) => numberedCard('411111', 300 + n)), ...Array.from({ length: 8 }, (_, n) => numberedCard('555555', 300 + n))];
    numbers.push(INELIGIBLE, DECLINED);
    const jwes = await encryptMany(vault.url, numbers.map((number) => ({ number, exp_month: 6, exp_year: year })));
    const items = jwes.map((card) => ({ card }));
    items.push({ card: await encryptCard(vault.url, { number: numberedCard('411111', 400), exp_month: 6, exp_year: year }), reusable: false } as never);
    const accepted = await api(vault.url, 'POST', '/v1/token-batches', {
      key: merchant.secretKey,
      json: { correlation_id: 'migration-nt', network_tokens: true, items },
    });
    expect(accepted.status, accepted.text).toBe(202);
    expect(accepted.body.network_tokens).toEqual({ requested: 0, pending: 0, active: 0, ineligible: 0, declined: 0, suspended: 0, deleted: 0 });

    const event = await until('token_batch.completed', async () => (await events(merchant, 'token_batch.completed'))[0], 60_000);
    expect(event.data.object).toMatchObject({
      id: accepted.body.id,
      status: 'completed',
      correlation_id: 'migration-nt',
      succeeded: 19,
      network_tokens: { requested: 18, active: 16, ineligible: 1, declined: 1, pending: 0 },
    });
    const created = await events(merchant, 'network_token.created');
    expect(created).toHaveLength(18);
    for (const e of created) expect(e.data.object.correlation_id).toBe('migration-nt');

    // The requests went out in the order of the jobs' claims: not the upload's BIN order.
    const { rows } = await vault.vault.db.query<{ network: string }>(
      `select n.network from network_tokens n join jobs j on j.kind = 'network_token.provision' and j.key = n.id
        where n.batch_id = $1 and n.network in ('visa', 'mastercard') and n.pan_last4 not in ('0010', '0028')
        order by j.run_at, j.id`,
      [accepted.body.id],
    );
    const order = rows.map((r) => r.network);
    expect(order).toHaveLength(16);
    expect(order.slice(0, 8)).not.toEqual(Array(8).fill('visa'));
  });

  it('answers a sync request 202 pending when the token service does not answer, replays that answer, and settles it from a job', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, UNAVAILABLE);
    const send = () =>
      api(vault.url, 'POST', `/v1/tokens/${token}/network-token`, {
        key: merchant.secretKey,
        headers: { 'idempotency-key': 'syncoutagekey' },
        json: { mode: 'sync', correlation_id: 'corr-outage' },
      });
    const sync = await send();
    expect(sync.status, sync.text).toBe(202);
    expect(sync.body).toMatchObject({ status: 'pending', token_id: null, correlation_id: 'corr-outage' });
    const again = await send();
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(sync.body.id);
    const settled = await until('network_token.created', async () =>
      (await events(merchant, 'network_token.created')).find((e) => e.data.object.id === sync.body.id),
    );
    expect(settled.data.object).toMatchObject({ status: 'declined', correlation_id: 'corr-outage' });
  });

  it('settles a network token declined, with its event, when the node running its last attempt died', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, DELAYED);
    const asked = await ask(merchant, token, { mode: 'async', correlation_id: 'corr-dead-node' });
    expect(asked.status, asked.text).toBe(202);
    const id = asked.body.id;
    // The network held it pending, so the job waits ~2 s for its next attempt...
    await until('the first attempt to end pending', async () => {
      const { rows } = await vault.vault.db.query<{ state: string }>(
        `select state from jobs where kind = 'network_token.provision' and key = $1 and attempts >= 1 and run_at > now()`,
        [id],
      );
      return rows[0]?.state === 'pending' ? true : undefined;
    });
    // ...which a node claims as its last and dies in: what the sweep finds once that lease has run out.
    const { rowCount } = await vault.vault.db.query(
      `update jobs set state = 'running', attempts = max_attempts, claim = gen_random_uuid(), claimed_by = 'a-node-that-died',
                       lease_expires_at = now() - interval '1 second'
        where kind = 'network_token.provision' and key = $1 and state = 'pending'`,
      [id],
    );
    expect(rowCount).toBe(1);
    const settled = await until('network_token.created', async () =>
      (await events(merchant, 'network_token.created')).find((e) => e.data.object.id === id),
    );
    expect(settled.data.object).toMatchObject({ status: 'declined', correlation_id: 'corr-dead-node' });
    const { rows } = await vault.vault.db.query<{ kind: string; state: string }>(
      `select kind, state from jobs where (kind = 'network_token.provision' and key = $1) or (kind = 'jobs.expired' and payload->>'job' = (
         select id::text from jobs where kind = 'network_token.provision' and key = $1)) order by kind`,
      [id],
    );
    expect(rows).toEqual([
      { kind: 'jobs.expired', state: 'done' },
      { kind: 'network_token.provision', state: 'dead' },
    ]);
  });

  it('settles a network token declined, with its event, once the token service failed its last attempt, and completes the batch waiting for it', async () => {
    const merchant = await createMerchant(vault);
    const year = nextYear();
    const jwes = await encryptMany(vault.url, [UNAVAILABLE, numberedCard('411111', 500)].map((number) => ({ number, exp_month: 6, exp_year: year })));
    const accepted = await api(vault.url, 'POST', '/v1/token-batches', {
      key: merchant.secretKey,
      json: { correlation_id: 'outage', network_tokens: true, items: jwes.map((card) => ({ card })) },
    });
    expect(accepted.status, accepted.text).toBe(202);

    const completed = await until('token_batch.completed', async () => (await events(merchant, 'token_batch.completed'))[0]);
    expect(completed.data.object.network_tokens).toMatchObject({ requested: 2, active: 1, declined: 1, pending: 0 });
    const created = await events(merchant, 'network_token.created');
    const declined = created.find((e) => e.data.object.status === 'declined');
    expect(declined.data.object).toMatchObject({ pan_last4: null, token_id: null, correlation_id: 'outage' });
    // Every attempt was used: the last one settled it, and completed the job.
    const { rows } = await vault.vault.db.query<{ state: string; attempts: number; max_attempts: number }>(
      `select state, attempts, max_attempts from jobs where kind = 'network_token.provision' and key = $1`,
      [declined.data.object.id],
    );
    expect(rows[0]).toEqual({ state: 'done', attempts: 10, max_attempts: 10 });
  });

  it('deletes the network tokens of a deleted vault token at the network, with network_token.updated, unless another token shares them', async () => {
    const merchant = await createMerchant(vault);
    const [first, second] = [await tokenize(merchant, ACTIVE.visa), await tokenize(merchant, ACTIVE.visa)];
    const a = (await ask(merchant, first!, { account_id: 'acct_del' })).body;
    const b = (await ask(merchant, second!, { account_id: 'acct_del' })).body;
    expect(b.token_id).toBe(a.token_id);
    const atNetwork = async () =>
      (await vault.vault.db.query<{ status: string }>('select status from sandbox_tsp_tokens where token_id = $1', [a.token_id])).rows[0]!.status;

    expect((await api(vault.url, 'DELETE', `/v1/tokens/${first}`, { key: merchant.secretKey })).status).toBe(200);
    const updated = await events(merchant, 'network_token.updated');
    expect(updated.map((e) => [e.data.object.id, e.data.object.status])).toEqual([[a.id, 'deleted']]);
    const erased = await vault.vault.db.query('select 1 from network_tokens where id = $1 and dpan_sealed is null', [a.id]);
    expect(erased.rowCount).toBe(1);
    await vault.vault.jobs.whenIdle();
    // The other vault token still pays with the network token: the network keeps it.
    expect(await atNetwork()).toBe('active');
    expect((await pay(merchant, second!)).credential).toBe('network_token');

    expect((await api(vault.url, 'DELETE', `/v1/tokens/${second}`, { key: merchant.secretKey })).status).toBe(200);
    await until('the network to delete the token', async () => ((await atNetwork()) === 'deleted' ? true : undefined));
    expect((await events(merchant, 'network_token.updated')).map((e) => e.data.object.id)).toEqual([b.id, a.id]);
  });

  it('settles a network token deleted, and deletes it at the network, when its vault token was deleted while the network held it pending', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, DELAYED);
    const pending = (await ask(merchant, token, { mode: 'sync' })).body;
    expect(pending).toMatchObject({ status: 'pending', token_id: expect.stringMatching(/^vts_/) });
    expect((await api(vault.url, 'DELETE', `/v1/tokens/${token}`, { key: merchant.secretKey })).status).toBe(200);

    await until('the network to delete the token', async () => {
      const { rows } = await vault.vault.db.query<{ status: string }>('select status from sandbox_tsp_tokens where token_id = $1', [pending.token_id]);
      return rows[0]!.status === 'deleted' ? true : undefined;
    });
    const { rows } = await vault.vault.db.query<{ status: string; dpan: boolean }>('select status, dpan_sealed is not null as dpan from network_tokens where id = $1', [
      pending.id,
    ]);
    expect(rows[0]).toEqual({ status: 'deleted', dpan: false });
    expect(await events(merchant, 'network_token.created')).toEqual([]);
  });

  it('refuses a payment that would fall back to the old card number after pan_update gave the card new last 4 digits, until the merchant sets the new card', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.mastercard);
    const ntok = (await ask(merchant, token, {})).body;
    expect((await lifecycle(merchant, ntok.id, { event: 'pan_update', pan_last4: '9876' })).status).toBe(200);
    // The network token follows the new card: payments on it go on.
    expect((await pay(merchant, token)).credential).toBe('network_token');

    expect((await lifecycle(merchant, ntok.id, { event: 'suspend' })).body.status).toBe('suspended');
    const refused = await api(vault.url, 'POST', '/v1/payments', { key: merchant.secretKey, json: { token, amount: 1999, currency: 'EUR' } });
    expect(refused.status, refused.text).toBe(422);
    expect(refused.body.error.code).toBe('card_outdated');

    const card = await encryptCard(vault.url, cardPlaintext({ number: '5105105105105100', cvc: '123' }, { exp_month: 3, exp_year: nextYear() }));
    const patched = await api(vault.url, 'PATCH', '/v1/tokens', { key: merchant.secretKey, json: { tokens: [{ token, card }] } });
    expect(patched.status, patched.text).toBe(200);
    expect((await pay(merchant, token)).credential).toBe('pan');
  });

  it('keeps paying on the card number after a pan_update that only changed the expiry', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.amex);
    const ntok = (await ask(merchant, token, {})).body;
    expect((await lifecycle(merchant, ntok.id, { event: 'pan_update', exp_month: 2, exp_year: nextYear() + 2 })).status).toBe(200);
    expect((await lifecycle(merchant, ntok.id, { event: 'delete' })).body.status).toBe('deleted');
    expect((await pay(merchant, token)).credential).toBe('pan');
  });

  it('never shows a network token number or cryptogram in answers, events, logs or the database', async () => {
    const merchant = await createMerchant(vault);
    const token = await tokenize(merchant, ACTIVE.visa);
    const ntok = await ask(merchant, token, { account_id: 'leak' });
    const payment = await pay(merchant, token);
    // The vault's own read of the credential (a payment's): the one place its number and a cryptogram are in the clear.
    const owner = await new MerchantDirectory(vault.vault.db, vault.vault.deps.merchantKeys).byId(merchant.id);
    const credential = await vault.vault.deps.networkTokens.credential(owner!, token);
    expect(credential?.number).toMatch(/^489537\d{10}$/);
    const secrets = [credential!.number, credential!.cryptogram];

    const answers = JSON.stringify([
      ntok.body,
      payment,
      (await api(vault.url, 'GET', `/v1/tokens/${token}`, { key: merchant.secretKey })).body,
      (await api(vault.url, 'GET', '/v1/events?limit=100', { key: merchant.secretKey })).body,
    ]);
    const log = readFileSync(vault.logFile, 'utf8');
    const dump = await dumpTables(async (sql) => (await vault.vault.db.query<Record<string, unknown>>(sql)).rows);
    for (const secret of secrets) {
      expect(answers).not.toContain(secret);
      expect(log).not.toContain(secret);
      for (const table of dump) {
        for (const value of table.values) {
          const text = typeof value === 'string' ? value : Buffer.from(value).toString('latin1');
          expect(text.includes(secret), `${table.table} holds a network token number or cryptogram`).toBe(false);
        }
      }
    }
  });
});
