/**
 * Network token provisioning across a kill -9: a vault process killed while
 * its background requests to the token services are in flight resumes them
 * after a restart, and no card gets a second network token at the network
 * (each request carries the network token's id, which the token service
 * answers again with the token it gave). On PostgreSQL, two vault processes
 * asking for the same Visa card and account at once get one token id.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.ts';
import type { Db } from '../../server/storage/db.ts';
import { openStorage } from '../../server/storage/open.ts';
import { api, createMerchant } from '../support/api.ts';
import { cardPlaintext, encryptCard, numberedCard } from '../support/cards.ts';
import { encryptMany, inParallel } from '../support/many.ts';
import { startVaultProcess, type VaultProcess } from '../support/vault-process.ts';
import { newDataDir, newTestDatabase, storageKinds } from '../support/vault.ts';

const CARDS_EACH = 6;
const silent = createLogger({ level: 'silent' });

describe.each(storageKinds())('network tokens across a kill -9 on %s', (storage) => {
  const running: VaultProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill('SIGTERM')));
  });

  /**
   * A vault process of its own (one worker: a kill or stop takes every request in flight with it) on a fresh data
   * folder or database, a merchant with network tokens on, and `numbers` tokenized there (reusable).
   */
  async function shopWithTokens(name: string, env: Record<string, string>, numbers: readonly string[]) {
    const dataDir = await newDataDir(storage, name);
    const databaseUrl = storage === 'postgres' ? await newTestDatabase() : undefined;
    const fullEnv = { TESSERA_JOB_POLL_MS: '100', TESSERA_WORKERS: '1', ...env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) };
    const vaultProcess = await startVaultProcess({ dataDir, env: fullEnv });
    running.push(vaultProcess);
    const vault = { url: vaultProcess.url, adminKey: readFileSync(join(dataDir, 'admin.key'), 'utf8').trim() };
    const merchant = await createMerchant(vault, { name: `${name} shop` });
    await api(vaultProcess.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: true } });
    const jwes = await encryptMany(vaultProcess.url, numbers.map((number) => cardPlaintext({ number, cvc: '123' })));
    await inParallel(jwes.length, 4, async (n) => {
      const made = await api(vaultProcess.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: jwes[n], reusable: true } });
      expect(made.status, made.text).toBe(201);
      expect(made.body.network_token).toEqual({ status: 'pending' });
    });
    return { dataDir, databaseUrl, env: fullEnv, vaultProcess, merchant };
  }

  it(
    'resumes the background requests after a restart, with one network token per card at the network',
    async () => {
      const numbers = [...Array.from({ length: CARDS_EACH }, (_, n) => numberedCard('411111', 500 + n)), ...Array.from({ length: CARDS_EACH }, (_, n) => numberedCard('555555', 500 + n))];
      const shop = await shopWithTokens(
        'network-tokens-crash',
        {
          TESSERA_JOB_LEASE_MS: '1000',
          // Slow and spread enough that the kill finds requests in flight: with 48 provisioning slots all twelve
          // run at once, and answers packed into 300 ms could all settle before the kill after the second lands.
          TESSERA_SANDBOX_TSP_DELAY_MS: '300-2500',
        },
        numbers,
      );
      const { dataDir, databaseUrl, env, merchant } = shop;
      let first = shop.vaultProcess;

      const settled = async (url: string) => {
        const listed = await api(url, 'GET', '/v1/tokens?limit=100', { key: merchant.secretKey });
        return listed.body.data.filter((t: { network_token: { status: string } | null }) => t.network_token?.status === 'active').length as number;
      };
      for (let done = await settled(first.url); done < 2; done = await settled(first.url)) await sleep(20);
      await first.kill('SIGKILL');
      expect(first.child.signalCode).toBe('SIGKILL');
      running.splice(0);

      first = await startVaultProcess({ dataDir, env });
      running.push(first);
      const atRestart = await settled(first.url);
      expect(atRestart).toBeLessThan(numbers.length);
      const deadline = Date.now() + 90_000;
      while ((await settled(first.url)) < numbers.length) {
        if (Date.now() > deadline) throw new Error('the network tokens did not all settle after the restart');
        await sleep(100);
      }

      if (storage === 'postgres') {
        // A second vault process on the same database: both ask for one Visa card and account at once (explicitly: background requests off).
        await api(first.url, 'PATCH', '/v1/merchant', { key: merchant.secretKey, json: { network_tokens: false } });
        const second = await startVaultProcess({ dataDir, env });
        running.push(second);
        const card = () => encryptCard(first.url, cardPlaintext({ number: numberedCard('411111', 900), cvc: '123' }));
        const tokens = await Promise.all(
          [first, second].map(async (p) => (await api(p.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await card(), reusable: true } })).body.token),
        );
        const asked = await Promise.all(
          [first, second].map((p, n) => api(p.url, 'POST', `/v1/tokens/${tokens[n]}/network-token`, { key: merchant.secretKey, json: { account_id: 'acct_both' } })),
        );
        for (const answer of asked) expect(answer.status, answer.text).toBe(201);
        expect(asked[0]!.body.token_id).toBe(asked[1]!.body.token_id);
      }
      await Promise.all(running.splice(0).map((p) => p.kill('SIGTERM')));

      const db: Db = await openStorage({ dataDir, databaseUrl, log: silent });
      try {
        const background = await db.query<{ token: string; rows: number; settled: number }>(
          `select token, count(*)::int as rows, count(settled_at)::int as settled from network_tokens
            where merchant_id = $1 and requested_by = 'background' group by token`,
          [merchant.id],
        );
        expect(background.rows).toHaveLength(numbers.length);
        for (const row of background.rows) expect(row).toMatchObject({ rows: 1, settled: 1 });
        // One token at each network per card: a request repeated after the kill got the token the first one was given.
        const atNetworks = await db.query<{ network: string; n: number }>(
          `select network, count(*)::int as n from sandbox_tsp_tokens where requestor = $1 and token_id in
             (select token_id from network_tokens where merchant_id = $1 and requested_by = 'background') group by network order by network`,
          [merchant.id],
        );
        expect(atNetworks.rows).toEqual([
          { network: 'mastercard', n: CARDS_EACH },
          { network: 'visa', n: CARDS_EACH },
        ]);
        const events = await db.query<{ n: number }>(
          `select count(*)::int as n from audit_events where merchant_id = $1 and event_type = 'network_token.created'
              and token in (select token from network_tokens where requested_by = 'background')`,
          [merchant.id],
        );
        expect(events.rows[0]!.n).toBe(numbers.length);
      } finally {
        await db.close();
      }
    },
    240_000,
  );

  it(
    'hands the background requests in flight to jobs when stopped (SIGTERM), and the next start settles them without waiting for a lease',
    async () => {
      const numbers = Array.from({ length: CARDS_EACH }, (_, n) => numberedCard('411111', 700 + n));
      const shop = await shopWithTokens(
        'network-tokens-stop',
        // Far longer than this test: only a hand-off at the stop, not the sweep's adoption, can settle them in time.
        { TESSERA_JOB_LEASE_MS: '600000', TESSERA_SANDBOX_TSP_DELAY_MS: '1500-3000' },
        numbers,
      );
      const { dataDir, databaseUrl, env, merchant } = shop;
      let vaultProcess = shop.vaultProcess;
      // The network answers in 1.5–3 s: stopped now, every one of them is still in memory (waiting for its group, or asked).
      await vaultProcess.kill('SIGTERM');
      running.splice(0);

      const db: Db = await openStorage({ dataDir, databaseUrl, log: silent });
      try {
        // Each one settled before the stop, or given to a job: none is left to a sweep a lease from now.
        const left = await db.query<{ id: string; settled: boolean; in_memory: boolean; job: boolean }>(
          `select n.id, n.settled_at is not null as settled, n.provisioning_since is not null as in_memory,
                  exists (select 1 from jobs j where j.kind = 'network_token.provision' and j.key = n.id and j.state = 'pending') as job
             from network_tokens n where n.merchant_id = $1`,
          [merchant.id],
        );
        expect(left.rows).toHaveLength(numbers.length);
        for (const row of left.rows) expect(row.in_memory === false && (row.settled || row.job), JSON.stringify(row)).toBe(true);
        expect(left.rows.filter((row) => row.job).length).toBeGreaterThan(0);
      } finally {
        await db.close();
      }

      vaultProcess = await startVaultProcess({ dataDir, env });
      running.push(vaultProcess);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const listed = await api(vaultProcess.url, 'GET', '/v1/tokens?limit=100', { key: merchant.secretKey });
        const active = listed.body.data.filter((t: { network_token: { status: string } | null }) => t.network_token?.status === 'active').length;
        if (active === numbers.length) break;
        if (Date.now() > deadline) throw new Error(`${active} of ${numbers.length} network tokens settled after the restart`);
        await sleep(100);
      }
    },
    120_000,
  );
});
