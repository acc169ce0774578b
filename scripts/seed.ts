/**
 * `npm run seed -- --tokens 1000000 [--merchant mer_…]`: adds that many
 * stored tokens to the vault that `DATABASE_URL` / `TESSERA_DATA_DIR` name
 * (stop a PGlite vault first: its data folder has one owner), for the demo
 * merchant unless `--merchant` says which; then prints how long it took,
 * the table's and indexes' sizes, and the bytes per stored token. Test card
 * numbers only, and never on a production vault (scripts/seed-tokens.ts).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { demoMerchantPath } from '../server/merchants/demo.ts';
import { MerchantDirectory } from '../server/merchants/service.ts';
import { openVault } from '../server/vault.ts';
import { seedTokens, tokenStorage } from './seed-tokens.ts';

const { values } = parseArgs({ options: { tokens: { type: 'string' }, merchant: { type: 'string' } } });
const count = Number(values.tokens);
if (!Number.isInteger(count) || count < 1 || count > 100_000_000) {
  console.error('usage: npm run seed -- --tokens <1…100000000> [--merchant mer_…]');
  process.exit(2);
}
const config = loadConfig();
if (config.production) {
  console.error('npm run seed writes test cards: it refuses a production vault (NODE_ENV=production).');
  process.exit(2);
}
const vault = await openVault(config, { log: createLogger({ level: 'warn' }), maintenance: false, jobs: false });
try {
  const merchantId = values.merchant ?? (JSON.parse(readFileSync(demoMerchantPath(config.dataDir), 'utf8')) as { merchant_id: string }).merchant_id;
  const merchant = await new MerchantDirectory(vault.db, vault.deps.merchantKeys).byId(merchantId);
  if (merchant === undefined) throw new Error(`no merchant ${merchantId}`);
  // Numbered after the tokens already there, so that a second seed adds distinct cards.
  const from = Number((await vault.db.query<{ n: string }>('select count(*)::text as n from tokens')).rows[0]!.n);
  const started = performance.now();
  let last = 0;
  await seedTokens(vault.deps, merchant, { from, to: from + count }, (done) => {
    if (done - last >= 50_000 || done === count) {
      last = done;
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(`${done.toLocaleString('en')}/${count.toLocaleString('en')} tokens, ${Math.round(done / seconds).toLocaleString('en')}/s\n`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const storage = await tokenStorage(vault.db);
  const indexBytes = storage.indexes.reduce((sum, index) => sum + index.bytes, 0);
  console.log(`seeded ${count.toLocaleString('en')} tokens for ${merchant.id} in ${seconds.toFixed(1)} s (${Math.round(count / seconds).toLocaleString('en')}/s)`);
  console.log(`${storage.tokens.toLocaleString('en')} stored tokens: table ${mib(storage.table)}, indexes ${mib(indexBytes)}, ${Math.round((storage.table + indexBytes) / storage.tokens)} bytes per token`);
  for (const index of storage.indexes) console.log(`  ${index.name}: ${mib(index.bytes)}`);
} finally {
  await vault.close();
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
