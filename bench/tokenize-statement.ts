/**
 * `npm run bench:tokenize-statement`: what one `tessera_create_token` costs
 * the database, alone. A vault (PGlite, in this process) makes one
 * tokenization of each kind — card fields (session, Idempotency-Key) and
 * merchant server — and the statement each would send is captured instead
 * of run (the request fails; nothing of it is stored); the vault is
 * closed, its database opened directly, and each captured call replayed in
 * a transaction that is rolled back (so every replay finds the same state).
 *
 * With `--variant name=file.sql` (repeatable) the variants' SQL is run
 * before each block of its replays and the blocks alternate (in the reverse
 * order every other round), so an old and
 * a new function definition are compared back to back on a busy machine:
 * e.g. a file with the old `create or replace function …` and one with the
 * new. Without variants, the schema as migrated is measured.
 *
 *   npm run bench:tokenize-statement [-- --calls 300] [--rounds 6] [--variant a=old.sql --variant b=new.sql]
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import type { Queryable } from '../server/storage/db.ts';
import { PreparedStatements } from '../server/storage/pglite-prepared.ts';
import { api, createMerchant, openSession, uniqueLetters } from '../test/support/api.ts';
import { cardPlaintext, encryptCard, numberedCard } from '../test/support/cards.ts';
import { startTestVault } from '../test/support/vault.ts';
import { percentile, sortedCopy } from './stats.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '6' },
    variant: { type: 'string', multiple: true, default: [] },
    // Also replay each call as a named prepared statement (server/storage/pglite-prepared.ts), as the vault's PGlite thread runs it.
    prepared: { type: 'boolean', default: false },
  },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const WARMUP = 50;
const variants = (values.variant.length > 0 ? values.variant : ['as migrated=']).map((spec) => {
  const at = spec.indexOf('=');
  const file = spec.slice(at + 1);
  return { name: spec.slice(0, at), sql: file === '' ? '' : readFileSync(file, 'utf8') };
});

interface Captured {
  sql: string;
  params: readonly unknown[];
}

const vault = await startTestVault({ name: 'bench-tokenize-statement', jobs: false });
const captured = new Map<string, Captured>();
let capturing = '';
const capture = (q: Queryable): Queryable => ({
  ...q,
  query: (sql, params) => {
    // Captured, not run: the replays must find the database as the call would have, so nothing of it is stored.
    if (capturing !== '' && sql.startsWith('select tessera_create_token(')) {
      captured.set(capturing, { sql, params: params ?? [] });
      return Promise.reject(new Error('captured for the benchmark'));
    }
    return q.query(sql, params);
  },
});
const { db } = vault.vault;
const { query } = db;
const transaction = db.transaction.bind(db);
db.query = (sql, params) => capture({ query, exec: db.exec }).query(sql, params);
db.transaction = <T>(work: (tx: Queryable) => Promise<T>) => transaction((tx) => work(capture(tx)));

try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop', allowedOrigins: ['https://shop.example'] });
  let n = 0;
  const card = () => encryptCard(vault.url, cardPlaintext({ number: numberedCard('4242', ++n), cvc: '123' }));
  capturing = 'card fields';
  const session = await openSession(vault.url, merchant);
  await api(vault.url, 'POST', '/v1/tokens', {
    json: { key: merchant.publishableKey, session, card: await card(), reusable: false },
    headers: { 'idempotency-key': uniqueLetters(24) },
  });
  capturing = 'merchant server';
  await api(vault.url, 'POST', '/v1/tokens', { key: merchant.secretKey, json: { card: await card() } });
  capturing = '';
  if (captured.size !== 2) throw new Error(`captured ${captured.size} tessera_create_token calls, not 2`);
} finally {
  await vault.close();
}

const pg = await PGlite.create(join(vault.dataDir, 'pgdata'));
try {
  const statements = new PreparedStatements(pg);
  const replay = async (call: Captured, prepared: boolean) => {
    await pg.exec('begin');
    const started = performance.now();
    if (prepared) await pg.runExclusive(() => statements.run(call.sql, call.params, true));
    else await pg.query(call.sql, call.params as unknown[]);
    const ms = performance.now() - started;
    await pg.exec('rollback');
    return ms;
  };
  const times = new Map<string, number[]>();
  // CPU time of this process per block (PGlite runs on this thread), which other load on the machine inflates far less than wall time.
  const cpu = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    // Every other round in the reverse order: whichever block runs second in a round came out ahead by 0.1–0.5 ms
    // of CPU, whatever it ran, so a fixed order would credit that to a variant.
    const inOrder = <T>(list: T[]) => (round % 2 === 0 ? list : [...list].reverse());
    for (const variant of inOrder(variants)) {
      if (variant.sql !== '') await pg.exec(variant.sql);
      for (const [kind, call] of captured) for (const prepared of inOrder(values.prepared ? [false, true] : [false])) {
        for (let i = 0; i < WARMUP; i++) await replay(call, prepared);
        const key = `${kind}, ${variant.name}${prepared ? ', prepared' : ''}`;
        const list = times.get(key) ?? [];
        const before = process.cpuUsage();
        for (let i = 0; i < CALLS; i++) list.push(await replay(call, prepared));
        const used = process.cpuUsage(before);
        cpu.set(key, (cpu.get(key) ?? 0) + (used.user + used.system) / 1000);
        times.set(key, list);
      }
    }
  }
  console.log(`tessera_create_token replayed on PGlite (this thread), ${ROUNDS} rounds × ${CALLS} calls after ${WARMUP} each, ms per call`);
  console.log('(wall time of the call; CPU: this process per call, the begin and rollback around each call included):');
  for (const [key, list] of times) {
    const sorted = sortedCopy(list);
    console.log(`  ${key}: p10 ${percentile(sorted, 10).toFixed(3)}, p25 ${percentile(sorted, 25).toFixed(3)}, median ${percentile(sorted, 50).toFixed(3)}; CPU ${((cpu.get(key) ?? 0) / list.length).toFixed(3)}`);
  }
} finally {
  await pg.close();
  rmSync(vault.dataDir, { recursive: true, force: true });
}
