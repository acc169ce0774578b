/**
 * `npm run bench:batch-chunk`: what one token batch chunk costs the
 * database, alone. A vault (in this process) runs a batch and the
 * `tessera_write_batch_chunk` calls it sends are recorded; the vault is
 * closed, its database opened directly, and the recorded items replayed as
 * chunks of each size in a transaction that is rolled back: a copy of the
 * batch with its items pending (not timed), then, timed, the chunk's one
 * statement (`tessera_write_batch_chunk`). Each replay gets fresh token names,
 * event ids, replay hashes and fingerprints, so every item is a new card.
 *
 * With `--variant name=file.sql` (repeatable) the variants' SQL is run
 * before each block of replays and the blocks alternate, so old and new
 * function definitions are compared back to back on a busy machine.
 *
 * `--storage postgres` runs it on a database of the cluster at
 * `TESSERA_TEST_PG_URL` (CPU is then this process's, not the server's).
 *
 *   npm run bench:batch-chunk [-- --storage pglite|postgres] [--items 256] [--sizes 16,64] [--rounds 4] [--variant a=old.sql --variant b=new.sql]
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import pgClient from 'pg';
import type { Queryable } from '../server/storage/db.ts';
import { api, createMerchant } from '../test/support/api.ts';
import { cardPlaintext, encryptCard, numberedCard } from '../test/support/cards.ts';
import { startTestVault } from '../test/support/vault.ts';
import { percentile, sortedCopy } from './stats.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '256' },
    sizes: { type: 'string', default: '16,64' },
    rounds: { type: 'string', default: '4' },
    variant: { type: 'string', multiple: true, default: [] },
    storage: { type: 'string', default: 'pglite' },
  },
});
const ITEMS = Number(values.items);
const SIZES = values.sizes.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const variants = (values.variant.length > 0 ? values.variant : ['as migrated=']).map((spec) => {
  const at = spec.indexOf('=');
  const file = spec.slice(at + 1);
  return { name: spec.slice(0, at), sql: file === '' ? '' : readFileSync(file, 'utf8') };
});

const ITEMS_PARAM = 4;
type Item = Record<string, unknown> & { item_index: number; card: Record<string, unknown> };
interface Call {
  sql: string;
  params: unknown[];
}

const storage = values.storage === 'postgres' ? 'postgres' : 'pglite';
// PostgreSQL: a database on the cluster at TESSERA_TEST_PG_URL.
const vault = await startTestVault({ name: 'bench-batch-chunk', storage });
const calls: Call[] = [];
const { db } = vault.vault;
const record = (q: Queryable): Queryable => ({
  ...q,
  query: (sql, params) => {
    if (sql.startsWith('select tessera_write_batch_chunk(')) calls.push({ sql, params: [...(params ?? [])] });
    return q.query(sql, params);
  },
});
const { query } = db;
const transaction = db.transaction.bind(db);
db.query = (sql, params) => record({ query, exec: db.exec }).query(sql, params);
db.transaction = <T>(work: (tx: Queryable) => Promise<T>) => transaction((tx) => work(record(tx)));

let batchId: string;
try {
  const merchant = await createMerchant(vault, { name: 'Bench Shop', allowedOrigins: ['https://shop.example'] });
  const cards: string[] = [];
  for (let n = 0; n < ITEMS; n++) cards.push(await encryptCard(vault.url, cardPlaintext({ number: numberedCard('4242', n + 1), cvc: '123' })));
  const accepted = await api(vault.url, 'POST', '/v1/token-batches', { key: merchant.secretKey, json: { items: cards.map((card) => ({ card })) } });
  if (accepted.status !== 202) throw new Error(`the batch was refused: ${accepted.status}`);
  batchId = accepted.body.id;
  for (;;) {
    const { body } = await api(vault.url, 'GET', `/v1/token-batches/${batchId}`, { key: merchant.secretKey });
    if (body.status === 'completed') break;
    await sleep(100);
  }
} finally {
  await vault.close();
}

const items: Item[] = [];
for (const call of calls) {
  // tessera_write_batch_chunk(p_batch_id, p_merchant_id, p_unique_tokens, p_together, p_items, …)
  items.push(...(JSON.parse(call.params[ITEMS_PARAM] as string) as Item[]));
}
items.sort((a, b) => a.item_index - b.item_index);
if (items.length !== ITEMS) throw new Error(`recorded ${items.length} items, not ${ITEMS}`);
const template = calls[0]!;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** The items as new cards: nothing of the recorded batch's run (tokens, replay records, fingerprints) matches them. */
const fresh = (chunk: Item[]): Item[] =>
  chunk.map((item) => {
    const fingerprint = hex(16);
    return { ...item, token: `tok_${hex(12)}`, audit_id: `evt_${hex(12)}`, ciphertext_hash: hex(32), fingerprint, card: { ...item.card, fingerprint } };
  });

interface Replayer {
  exec(sql: string): Promise<unknown>;
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  close(): Promise<void>;
}
let pg: Replayer;
if (storage === 'pglite') {
  pg = await PGlite.create(join(vault.dataDir, 'pgdata'));
} else {
  const client = new pgClient.Client({ connectionString: vault.databaseUrl });
  await client.connect();
  pg = {
    exec: (sql) => client.query(sql),
    query: async <R>(sql: string, params?: unknown[]) => ({ rows: (await client.query(sql, params)).rows as R[] }),
    close: () => client.end(),
  };
}
try {
  const replay = async (chunk: Item[]) => {
    const copy = `tbat_${hex(12)}`;
    const indexes = chunk.map((i) => i.item_index);
    await pg.exec('begin');
    await pg.query(
      `insert into token_batches select (jsonb_populate_record(null::token_batches, to_jsonb(b) || jsonb_build_object('id', $2::text, 'status', 'processing', 'processed', 0, 'succeeded', 0, 'failed', 0, 'completed_at', null))).* from token_batches b where id = $1`,
      [batchId, copy],
    );
    await pg.query(
      `insert into token_batch_items select (jsonb_populate_record(null::token_batch_items, to_jsonb(i) || jsonb_build_object('batch_id', $2::text, 'state', 'pending', 'card', 'x', 'token', null, 'brand', null, 'last4', null, 'exp_month', null, 'exp_year', null, 'processed_at', null))).* from token_batch_items i where batch_id = $1 and item_index = any($3::integer[])`,
      [batchId, copy, indexes],
    );
    const written = fresh(chunk);
    const params = template.params.map((p, i) => (i === 0 ? copy : i === ITEMS_PARAM ? JSON.stringify(written) : p));
    const started = performance.now();
    const { rows } = await pg.query<{ result: unknown }>(template.sql, params);
    if (rows[0]!.result !== null) throw new Error(`unexpected outcomes: ${JSON.stringify(rows[0]!.result)}`);
    const ms = performance.now() - started;
    await pg.exec('rollback');
    return ms;
  };
  const perItem = new Map<string, number[]>();
  const cpu = new Map<string, { ms: number; items: number }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of variants) {
      if (variant.sql !== '') await pg.exec(variant.sql);
      for (const size of SIZES) {
        const chunks: Item[][] = [];
        for (let at = 0; at + size <= items.length; at += size) chunks.push(items.slice(at, at + size));
        // Warm-up: the functions' plans, per variant (PL/pgSQL plans a statement for its first five calls, then may keep a generic plan).
        for (let i = 0; i < 8; i++) await replay(chunks[i % chunks.length]!);
        const key = `${size} items, ${variant.name}`;
        const list = perItem.get(key) ?? [];
        const used = cpu.get(key) ?? { ms: 0, items: 0 };
        const before = process.cpuUsage();
        for (const chunk of chunks) list.push((await replay(chunk)) / size);
        const spent = process.cpuUsage(before);
        used.ms += (spent.user + spent.system) / 1000;
        used.items += chunks.length * size;
        perItem.set(key, list);
        cpu.set(key, used);
      }
    }
  }
  console.log(`token batch chunks replayed on ${storage}, ${ROUNDS} rounds over ${items.length} items, ms per item`);
  console.log('(wall time of the chunk\'s calls ÷ its items; CPU: this process per item, the copy of the batch, begin and rollback included):');
  for (const [key, list] of perItem) {
    const sorted = sortedCopy(list);
    const used = cpu.get(key)!;
    console.log(`  ${key}: p10 ${percentile(sorted, 10).toFixed(3)}, median ${percentile(sorted, 50).toFixed(3)}; CPU ${(used.ms / used.items).toFixed(3)}`);
  }
} finally {
  await pg.close();
  rmSync(vault.dataDir, { recursive: true, force: true });
}
