/**
 * `npm run bench:subscriptions`: how long one sandbox clock advance takes to
 * charge `BENCH_SUBSCRIPTIONS` (default 10,000) subscriptions that are all
 * due, on PGlite (one vault process) and on PostgreSQL (a throwaway
 * cluster, two vault processes sharing the work). Each run checks that
 * every period was charged once — none twice, none missed — and prints
 * what each process did. Target: ≤ 30 s per advance.
 */
import { startThrowawayPostgres } from '../test/support/postgres.ts';
import { benchAdvance, chargedEachPeriodOnce, type AdvanceResult } from './subscription-advance.ts';

const SUBSCRIPTIONS = Number(process.env['BENCH_SUBSCRIPTIONS'] ?? 10_000);
const TARGET_SECONDS = 30;

function report(label: string, result: AdvanceResult): boolean {
  const once = chargedEachPeriodOnce(result);
  const rate = result.subscriptions / result.advanceSeconds;
  console.log(
    `${label.padEnd(24)} ${String(result.subscriptions).padStart(6)} charges  advance ${result.advanceSeconds.toFixed(1).padStart(5)} s` +
      `  (${rate.toFixed(0)}/s, target ≤ ${TARGET_SECONDS} s ${result.advanceSeconds <= TARGET_SECONDS ? '✔' : '✘'})` +
      `  per process ${result.perNode.join(' + ')}  setup ${result.setupSeconds.toFixed(0)} s`,
  );
  console.log(`${''.padEnd(24)} check: ${JSON.stringify(result.check)} → ${once ? 'each period charged once ✔' : 'NOT each period once ✘'}`);
  return once;
}

let ok = report('PGlite, 1 process', await benchAdvance({ storage: 'pglite', nodes: 1, subscriptions: SUBSCRIPTIONS }));
const cluster = await startThrowawayPostgres({ name: 'bench-subscriptions' }).catch((error: Error) => {
  console.warn(`PostgreSQL unavailable, skipping it: ${error.message}`);
  return undefined;
});
if (cluster !== undefined) {
  try {
    const result = await benchAdvance({ storage: 'postgres', nodes: 2, subscriptions: SUBSCRIPTIONS, databaseUrl: await cluster.createDatabase() });
    ok = report('PostgreSQL, 2 processes', result) && ok;
  } finally {
    await cluster.destroy();
  }
}
// A period charged twice or missed is a failure; a missed speed target is a figure, reported above.
if (!ok) process.exitCode = 1;
