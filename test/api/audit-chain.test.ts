/**
 * The audit log's hash chains (issue #8, item 6): every entry stores the hash
 * of the entry before it in its chain, and `GET /v1/audit/verify` (`tessera
 * audit verify`) recomputes them. Tests change the log directly in the
 * database, as someone with write access to it would, and expect each change
 * reported.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../server/audit/audit.ts';
import type { AuditVerification, ChainProblem } from '../../server/audit/chain.ts';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { migrate, schemaSources } from '../../server/storage/migrate.ts';
import { openPglite } from '../../server/storage/pglite.ts';
import { openPostgres } from '../../server/storage/postgres.ts';
import { api, createMerchant, openSession, type ApiResponse, type TestMerchant } from '../support/api.ts';
import { CARDS, SANDBOX_CARDS, cardPlaintext, encryptCard } from '../support/cards.ts';
import { encryptMany, inParallel } from '../support/many.ts';
import { nodeArgs } from '../support/vault-process.ts';
import { emptyTestDatabase, newEmptyPgliteDir, startTestVault, storageKinds, type StorageKind, type TestVault } from '../support/vault.ts';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const silent = createLogger({ level: 'silent' });

type Verification = AuditVerification & { object: string };

async function verify(vault: TestVault, expect: string[] = []): Promise<Verification> {
  const query = new URLSearchParams(expect.map((text): [string, string] => ['expect', text]));
  const response = await api(vault.url, 'GET', `/v1/audit/verify${query.size === 0 ? '' : `?${query}`}`, { key: vault.adminKey });
  if (response.status !== 200) throw new Error(`audit verify answered ${response.status} ${response.text}`);
  return response.body as Verification;
}

/** A merchant's activity of every kind the vault audits: tokens, payments, refusals and failures. */
async function workload(vault: TestVault, shop: TestMerchant): Promise<void> {
  const secret = { key: shop.secretKey };
  const ok = (response: ApiResponse, status: number) => {
    if (response.status !== status) throw new Error(`expected ${status}, got ${response.status} ${response.text}`);
    return response;
  };
  const fields = ok(
    await api(vault.url, 'POST', '/v1/tokens', {
      json: { key: shop.publishableKey, session: await openSession(vault.url, shop), card: await encryptCard(vault.url, cardPlaintext()) },
    }),
    201,
  );
  const saved = ok(
    await api(vault.url, 'POST', '/v1/tokens', { ...secret, json: { card: await encryptCard(vault.url, cardPlaintext(CARDS.mastercard)), reusable: true, verify: true } }),
    201,
  );
  const [card] = await encryptMany(vault.url, [cardPlaintext(CARDS.mastercard, { exp_month: 4 })]);
  ok(await api(vault.url, 'PATCH', '/v1/tokens', { ...secret, json: { tokens: [{ token: saved.body.token, card }, { token: 'tok_missing000000000000000', reusable: false }] } }), 200);
  ok(await api(vault.url, 'GET', `/v1/tokens/${saved.body.token}`, secret), 200);
  ok(await api(vault.url, 'GET', '/v1/tokens?limit=5', secret), 200);
  ok(await api(vault.url, 'GET', '/v1/tokens/tok_missing000000000000001', secret), 404);
  const paid = ok(await api(vault.url, 'POST', '/v1/payments', { ...secret, json: { token: fields.body.token, amount: 1200, currency: 'EUR', capture: true } }), 201);
  ok(await api(vault.url, 'POST', `/v1/payments/${paid.body.id}/refunds`, { ...secret, json: { amount: 200 } }), 201);
  ok(await api(vault.url, 'POST', `/v1/payments/${paid.body.id}/void`, { ...secret, json: {} }), 422);
  const declinedToken = ok(
    await api(vault.url, 'POST', '/v1/tokens', { ...secret, json: { card: await encryptCard(vault.url, cardPlaintext({ number: SANDBOX_CARDS.insufficient_funds, cvc: '123' })) } }),
    201,
  );
  ok(await api(vault.url, 'POST', '/v1/payments', { ...secret, json: { token: declinedToken.body.token, amount: 700, currency: 'EUR' } }), 402);
  ok(await api(vault.url, 'DELETE', `/v1/tokens/${saved.body.token}`, secret), 200);
  ok(await api(vault.url, 'PATCH', '/v1/merchant', { ...secret, json: { unique_tokens: false } }), 200);
  ok(await api(vault.url, 'GET', '/v1/merchant', { key: shop.publishableKey }), 403);
  ok(await api(vault.url, 'GET', '/v1/merchant', { key: 'sk_test_000000000000000000000000' }), 401);
}

/** The merchant's chain as the database holds it, oldest first. */
async function chainOf(vault: TestVault, chain: string): Promise<{ seq: number; id: string }[]> {
  const { rows } = await vault.vault.db.query<{ seq: string | number; id: string }>(
    'select chain_seq as seq, id from audit_events where chain = $1 order by chain_seq',
    [chain],
  );
  return rows.map((row) => ({ seq: Number(row.seq), id: row.id }));
}

const problemsOf = (report: AuditVerification, chain: string) =>
  report.problems.filter((p) => p.chain === chain).map(({ kind, seq, to_seq, entry }: ChainProblem) => ({ kind, seq, to_seq, entry }));

/** Runs `work` as someone who owns the table would: with the append-only guard switched off. */
async function asTableOwner(vault: TestVault, work: (db: Db) => Promise<unknown>): Promise<void> {
  const { db } = vault.vault;
  await db.exec('alter table audit_events disable trigger audit_events_append_only');
  try {
    await work(db);
  } finally {
    await db.exec('alter table audit_events enable trigger audit_events_append_only');
  }
}

/** Recomputes the chain's links and hashes from `fromSeq` on, and its head: what an intruder who knows the scheme can do. */
async function rehashChain(db: Db, chain: string, fromSeq: number, options: { head: boolean }): Promise<void> {
  const { rows } = await db.query<{ seq: string }>('select seq::text as seq from audit_events where chain = $1 and chain_seq >= $2 order by chain_seq', [chain, fromSeq]);
  for (const row of rows) {
    await db.query(
      `update audit_events e set prev_hash = coalesce(
         (select hash from audit_events p where p.chain = e.chain and p.chain_seq = e.chain_seq - 1), decode(repeat('00', 32), 'hex'))
        where seq = $1`,
      [row.seq],
    );
    await db.query('update audit_events e set hash = tessera_audit_entry_hash(e) where seq = $1', [row.seq]);
  }
  if (options.head) {
    await db.query(
      `update audit_chain_heads h set hash = (select hash from audit_events e where e.chain = h.chain order by chain_seq desc limit 1) where chain = $1`,
      [chain],
    );
  }
}

describe.each(storageKinds())('the audit log hash chains on %s', (storage) => {
  describe('an untouched log', () => {
    let vault: TestVault;
    beforeAll(async () => {
      vault = await startTestVault({ storage, name: 'audit-chain' });
    });
    afterAll(() => vault?.close());

    it('verifies clean after a real workload of tokens, payments, refusals, failed authentication and admin work', async () => {
      const shop = await createMerchant(vault, { name: 'Chained Shop' });
      const other = await createMerchant(vault, { name: 'Other Chained Shop' });
      await workload(vault, shop);
      await workload(vault, other);
      expect((await api(vault.url, 'POST', '/v1/keys/rotate', { key: vault.adminKey, json: {} })).status).toBe(201);

      // Read before verifying: the verification records itself in the operator's chain afterwards.
      const { rows } = await vault.vault.db.query<{ n: number }>('select count(*)::int as n from audit_events');
      const chains = new Map<string, { seq: number }[]>();
      for (const chain of [shop.id, other.id, 'operator']) chains.set(chain, await chainOf(vault, chain));
      const report = await verify(vault);
      expect(report).toMatchObject({ object: 'audit_verification', ok: true, problems: [], witnesses: 0 });
      expect(report.entries).toBe(rows[0]!.n);
      for (const [chain, entries] of chains) {
        expect(entries.length).toBeGreaterThan(1);
        expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
        expect(report.chains.find((c) => c.chain === chain)).toMatchObject({ entries: entries.length, head: { seq: entries.length } });
      }
      expect(report.chains.map((c) => c.head!.hash).every((hash) => /^[0-9a-f]{64}$/.test(hash))).toBe(true);
    });

    it('hashes an entry in the form every stored entry was hashed in (v1 without an event, v2 with one)', async () => {
      // The hashes of these two entries as the chain's first version computed them (2026-12-04, before the
      // hash moved from a SQL function to PL/pgSQL): a change of the form would leave every stored entry unverifiable.
      const entry = {
        seq: 42,
        id: 'evt_golden',
        merchant_id: 'mer_golden',
        actor: 'sk_test_…wxyz',
        action: 'token.create',
        outcome: 'succeeded',
        token: 'tok_golden',
        created_at: '2026-12-04T05:06:07.123456Z',
        client_ip: '203.0.113.7',
        request_id: 'req_golden',
        chain: 'mer_golden',
        chain_seq: 7,
        prev_hash: `\\x${'ab'.repeat(32)}`,
      };
      const event = { token: 'tok_golden', brand: 'visa', cardholder_name: 'Zoë "Q" Ünal\\', nested: { b: [1, 2.5, null], a: true } };
      const hashOf = async (fields: object) =>
        (
          await vault.vault.db.query<{ hash: string }>(
            `select encode(tessera_audit_entry_hash(jsonb_populate_record(null::audit_events, $1::jsonb)), 'hex') as hash`,
            [JSON.stringify(fields)],
          )
        ).rows[0]!.hash;
      expect(await hashOf({ ...entry, outcome: 'failed', code: 'card_declined', payment_id: 'pay_1' })).toBe('0ae0ab827109006d92255f44ca5134e2e9939e1205a8b983eb7a8bb022094c0f');
      expect(await hashOf({ ...entry, event_type: 'token.created', data: event })).toBe('53fe3c8084f325098a12bfead8e20a0d152cf7778e9a4a28a38afdca8132e1e1');
    });

    it('keeps each chain numbered without gaps and verifiable under concurrent writers of two merchants', async () => {
      const shops = [await createMerchant(vault, { name: 'Busy A' }), await createMerchant(vault, { name: 'Busy B' })];
      const cards = await encryptMany(vault.url, Array.from({ length: 24 }, () => cardPlaintext()));
      const requests: (() => Promise<ApiResponse>)[] = [];
      cards.forEach((card, i) => requests.push(() => api(vault.url, 'POST', '/v1/tokens', { key: shops[i % 2]!.secretKey, json: { card } })));
      for (let i = 0; i < 8; i++) {
        const shop = shops[i % 2]!;
        requests.push(() => api(vault.url, 'GET', '/v1/merchant', { key: shop.secretKey }));
        requests.push(() => api(vault.url, 'GET', '/v1/tokens/tok_missing000000000000002', { key: shop.secretKey }));
        requests.push(() => api(vault.url, 'PATCH', '/v1/merchant', { key: shop.secretKey, json: { unique_tokens: false } }));
        requests.push(() => api(vault.url, 'GET', '/v1/tokens', { key: shop.publishableKey }));
      }
      const responses = await inParallel(requests.length, 16, (i) => requests[i]!());
      expect(responses.filter((r) => r.status >= 500).map((r) => r.text)).toEqual([]);

      const report = await verify(vault);
      expect(report.problems).toEqual([]);
      for (const shop of shops) {
        const entries = await chainOf(vault, shop.id);
        // merchant.created, 12 tokens, and 4 rounds of a read, a failed read and an update (the publishable key's failures are the operator's)
        expect(entries.length).toBe(1 + 12 + 4 * 3);
        expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
      }
    });

    it("refuses to change, remove or truncate entries through the vault's own connection", async () => {
      const { db } = vault.vault;
      const before = await db.query<{ n: number }>('select count(*)::int as n from audit_events');
      await expect(db.query(`update audit_events set action = 'token.read' where seq = (select min(seq) from audit_events)`)).rejects.toThrow(/append-only/);
      await expect(db.query('delete from audit_events where seq = (select max(seq) from audit_events)')).rejects.toThrow(/append-only/);
      // Refused by the trigger, or before it by the foreign keys of the webhook deliveries that point at events.
      await expect(db.exec('truncate audit_events')).rejects.toThrow(/append-only|foreign key/);
      expect((await db.query<{ n: number }>('select count(*)::int as n from audit_events')).rows).toEqual(before.rows);
      expect((await verify(vault)).ok).toBe(true);
    });
  });

  describe('a log changed in the database', () => {
    let vault: TestVault;
    beforeAll(async () => {
      vault = await startTestVault({ storage, name: 'audit-tamper' });
    });
    afterAll(() => vault?.close());

    /** A merchant with a chain of its own to change: creation, then its workload. */
    async function chainedShop(): Promise<{ shop: TestMerchant; entries: { seq: number; id: string }[] }> {
      const shop = await createMerchant(vault, { name: 'Tampered Shop' });
      await workload(vault, shop);
      const entries = await chainOf(vault, shop.id);
      expect(entries.length).toBeGreaterThan(10);
      expect(problemsOf(await verify(vault), shop.id)).toEqual([]);
      return { shop, entries };
    }

    it('reports an edited entry', async () => {
      const { shop, entries } = await chainedShop();
      const target = entries[4]!;
      await asTableOwner(vault, (db) => db.query(`update audit_events set actor = 'tampered' where id = $1`, [target.id]));
      const report = await verify(vault);
      expect(report.ok).toBe(false);
      expect(problemsOf(report, shop.id)).toEqual([{ kind: 'edited', seq: target.seq, to_seq: null, entry: target.id }]);
    });

    it('reports a removed entry in the middle of a chain', async () => {
      const { shop, entries } = await chainedShop();
      const target = entries[5]!;
      await asTableOwner(vault, (db) => db.query('delete from audit_events where id = $1', [target.id]));
      expect(problemsOf(await verify(vault), shop.id)).toEqual([{ kind: 'removed', seq: target.seq, to_seq: target.seq, entry: null }]);
    });

    it('reports removed entries at the end of a chain', async () => {
      const { shop, entries } = await chainedShop();
      const [secondLast, last] = entries.slice(-2);
      await asTableOwner(vault, (db) => db.query('delete from audit_events where id = any($1::text[])', [[secondLast!.id, last!.id]]));
      expect(problemsOf(await verify(vault), shop.id)).toEqual([{ kind: 'removed', seq: secondLast!.seq, to_seq: last!.seq, entry: null }]);
    });

    it('reports an entry rewritten with a recomputed hash where the next entry no longer links to it', async () => {
      const { shop, entries } = await chainedShop();
      const target = entries[3]!;
      await asTableOwner(vault, async (db) => {
        await db.query(`update audit_events set actor = 'tampered' where id = $1`, [target.id]);
        await db.query('update audit_events e set hash = tessera_audit_entry_hash(e) where id = $1', [target.id]);
      });
      expect(problemsOf(await verify(vault), shop.id)).toEqual([{ kind: 'out_of_order', seq: target.seq + 1, to_seq: null, entry: entries[4]!.id }]);
    });

    it('reports entries swapped in their chain', async () => {
      const { shop, entries } = await chainedShop();
      const [a, b] = [entries[2]!, entries[3]!];
      await asTableOwner(vault, async (db) => {
        await db.query('update audit_events set chain_seq = -1 where id = $1', [a.id]);
        await db.query('update audit_events set chain_seq = $2 where id = $1', [b.id, a.seq]);
        await db.query('update audit_events set chain_seq = $2 where id = $1', [a.id, b.seq]);
      });
      const problems = problemsOf(await verify(vault), shop.id);
      expect(problems).toContainEqual({ kind: 'out_of_order', seq: a.seq, to_seq: null, entry: b.id });
      expect(problems).toContainEqual({ kind: 'out_of_order', seq: b.seq, to_seq: null, entry: a.id });
      expect(problems.filter((p) => p.kind === 'removed')).toEqual([]);
    });

    it('cannot tell a chain rewritten whole, head included, from the original; a head written down earlier can', async () => {
      const { shop, entries } = await chainedShop();
      const witnessed = (await verify(vault)).chains.find((c) => c.chain === shop.id)!;
      const witness = `${shop.id}:${witnessed.head!.seq}:${witnessed.head!.hash}`;
      expect(problemsOf(await verify(vault, [witness]), shop.id)).toEqual([]);

      const target = entries[2]!;
      await asTableOwner(vault, async (db) => {
        await db.query(`update audit_events set action = 'token.read' where id = $1`, [target.id]);
        await rehashChain(db, shop.id, target.seq, { head: true });
      });
      expect(problemsOf(await verify(vault), shop.id)).toEqual([]);
      expect(problemsOf(await verify(vault, [witness]), shop.id)).toEqual([
        { kind: 'edited', seq: witnessed.head!.seq, to_seq: null, entry: entries.at(-1)!.id },
      ]);
    });

    it('answers 400 for a witness that is not <chain>:<seq>:<hash>, and 401 without the admin key', async () => {
      const bad = await api(vault.url, 'GET', '/v1/audit/verify?expect=mer_x:1:nothex', { key: vault.adminKey });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatchObject({ code: 'parameter_invalid', param: 'expect' });
      const shop = await createMerchant(vault);
      expect((await api(vault.url, 'GET', '/v1/audit/verify', { key: shop.secretKey })).status).toBe(401);
    });
  });

  describe('the upgrade that brought the chain', () => {
    let db: Db | undefined;
    afterEach(async () => {
      await db?.close();
      db = undefined;
    });

    /** An empty database brought to the schema of the build before the chain (migrations 001–006). */
    async function databaseBeforeTheChain(kind: StorageKind): Promise<Db> {
      if (kind === 'pglite') {
        // A copy of an initialised, empty PGlite: its own initdb took most of this test's time.
        db = await openPglite(await newEmptyPgliteDir('audit-upgrade'));
      } else {
        db = await openPostgres(await emptyTestDatabase(), silent);
      }
      const before = schemaSources().migrations.filter((file) => file.name < '007');
      expect(before.map((file) => file.name.slice(0, 3))).toEqual(['001', '002', '003', '004', '005', '006']);
      await db.transaction(async (tx) => {
        await tx.exec('create table schema_migrations (version text primary key, applied_at timestamptz not null default now(), checksum text)');
        for (const file of before) {
          await tx.exec(file.text);
          await tx.query('insert into schema_migrations (version, checksum) values ($1, $2)', [file.name, file.checksum]);
        }
        await tx.query(
          `insert into merchants (id, name, publishable_key, secret_key_hash, data_key_sealed, fingerprint_key_sealed)
           values ('mer_before', 'Before', 'pk_test_beforebeforebeforebefore', '\\x01', '\\x02', '\\x03')`,
        );
        // As the build before wrote them: no source, no chain.
        for (const [id, merchant, action] of [
          ['evt_old1', 'mer_before', 'merchant.created'],
          ['evt_old2', null, 'auth.failed'],
          ['evt_old3', 'mer_before', 'token.created'],
          ['evt_old4', 'mer_before', 'token.read'],
          ['evt_old5', null, 'key.rotated'],
        ] as const) {
          await tx.query(`insert into audit_events (id, merchant_id, actor, action, outcome) values ($1, $2, 'admin', $3, 'succeeded')`, [id, merchant, action]);
        }
      });
      return db;
    }

    it('chains the entries written before it, oldest first, and new entries continue each chain', async () => {
      const upgraded = await databaseBeforeTheChain(storage);
      const later = schemaSources().migrations.filter((file) => file.name >= '007').map((file) => file.name);
      expect(later.slice(0, 3)).toEqual(['007_audit_source.sql', '008_audit_chain.sql', '009_key_hierarchy.sql']);
      expect(await migrate(upgraded)).toEqual([...later, 'functions']);
      const { rows } = await upgraded.query<{ id: string; chain: string; chain_seq: string }>(
        'select id, chain, chain_seq::text as chain_seq from audit_events order by seq',
      );
      expect(rows.map((r) => [r.id, r.chain, Number(r.chain_seq)])).toEqual([
        ['evt_old1', 'mer_before', 1],
        ['evt_old2', 'operator', 1],
        ['evt_old3', 'mer_before', 2],
        ['evt_old4', 'mer_before', 3],
        ['evt_old5', 'operator', 2],
      ]);
      const audit = new AuditLog(upgraded);
      expect(await audit.verify()).toMatchObject({ ok: true, entries: 5, problems: [] });

      await audit.record({ merchantId: 'mer_before', actor: 'admin', action: 'merchant.read', outcome: 'succeeded', clientIp: '127.0.0.1', requestId: 'req_after' });
      expect(await audit.verify()).toMatchObject({ ok: true, entries: 6 });
      expect((await audit.chainHeads()).map((h) => [h.chain, h.seq])).toEqual([
        ['mer_before', 4],
        ['operator', 2],
      ]);
    }, 120_000);

    it('never chains an entry slipped in later with the trigger off, when the functions are applied again', async () => {
      const upgraded = await databaseBeforeTheChain(storage);
      await migrate(upgraded);
      await upgraded.exec('alter table audit_events disable trigger audit_events_chain');
      await upgraded.query(`insert into audit_events (id, merchant_id, actor, action, outcome) values ('evt_forged', 'mer_before', 'admin', 'token.deleted', 'succeeded')`);
      await upgraded.exec('alter table audit_events enable trigger audit_events_chain');
      await upgraded.query(`update schema_functions set checksum = 'changed'`);
      expect(await migrate(upgraded)).toEqual(['functions']);

      const report = await new AuditLog(upgraded).verify();
      expect(report.ok).toBe(false);
      expect(report.problems.map((p) => [p.kind, p.chain, p.entry])).toContainEqual(['edited', 'mer_before', 'evt_forged']);
    }, 120_000);
  });

  describe('tessera audit verify', () => {
    let vault: TestVault;
    beforeAll(async () => {
      vault = await startTestVault({ storage, name: 'audit-cli' });
    });
    afterAll(() => vault?.close());

    /**
     * `tessera audit verify …` as an operator runs it (`npm run tessera`), from the CLI's bundle as the other
     * CLI tests run it: npm and tsx starting took most of each call (merchants.test.ts runs the npm script).
     * Never throws on a non-zero exit.
     */
    async function tessera(...args: string[]): Promise<{ code: number; report: Verification; stderr: string }> {
      const outcome = await execFileAsync(process.execPath, [...(await nodeArgs('server/cli.ts')), 'audit', 'verify', ...args, '--url', vault.url], {
        cwd: ROOT,
        env: { ...process.env, TESSERA_ADMIN_KEY: vault.adminKey },
        timeout: 30_000,
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
      );
      // The CLI prints its report on stdout whatever it finds; without one, what it said on stderr is the failure to show.
      if (outcome.stdout.trim() === '') throw new Error(`tessera audit verify exited ${outcome.code} with no report; stderr: ${outcome.stderr}`);
      return { code: outcome.code, report: JSON.parse(outcome.stdout) as Verification, stderr: outcome.stderr };
    }

    it('exits 0 on an intact log and 1 once an entry is removed, naming the problem; a head the vault logged is a witness', async () => {
      const shop = await createMerchant(vault, { name: 'CLI Shop' });
      await workload(vault, shop);

      const intact = await tessera();
      expect(intact.code).toBe(0);
      expect(intact.report.ok).toBe(true);
      expect(intact.stderr).toContain('the audit log is intact');

      // A restarted vault logs every chain's head at once (then each minute, for the heads that moved).
      await vault.close();
      const logStart = readFileSync(vault.logFile).length;
      vault = await startTestVault({ storage, dataDir: vault.dataDir, databaseUrl: vault.databaseUrl });
      // The round that starts with the vault may still be running: wait for a whole round, then read the log.
      await vault.vault.maintain();
      const logged = loggedHead(vault, shop.id, logStart);
      expect(logged.seq).toBe(intact.report.chains.find((c) => c.chain === shop.id)!.head!.seq);
      const witness = `${shop.id}:${logged.seq}:${logged.hash}`;
      expect((await tessera('--expect', witness)).code).toBe(0);

      const entries = await chainOf(vault, shop.id);
      await asTableOwner(vault, (db) => db.query('delete from audit_events where id = $1', [entries[1]!.id]));
      const broken = await tessera('--expect', witness);
      expect(broken.code).toBe(1);
      expect(broken.report.problems).toEqual([expect.objectContaining({ kind: 'removed', chain: shop.id, seq: 2, to_seq: 2 })]);
      expect(broken.stderr).toContain(`removed ${shop.id} #2: Entries are missing from the middle of the chain.`);
    });
  });
});

/** The last `audit chain head` line the vault logged for `chain` past `offset`. */
function loggedHead(vault: TestVault, chain: string, offset: number): { seq: number; hash: string } {
  const lines = readFileSync(vault.logFile)
    .subarray(offset)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { msg?: string; audit_chain?: string; seq?: number; hash?: string })
    .filter((line) => line.msg === 'audit chain head' && line.audit_chain === chain);
  const last = lines.at(-1);
  if (last === undefined) throw new Error(`the vault logged no head for ${chain}`);
  return { seq: last.seq!, hash: last.hash! };
}
