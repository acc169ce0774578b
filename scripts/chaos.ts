/**
 * `npm run chaos`: faults under load, the long version (issue #14). With 16
 * clients tokenizing and paying: (a) SIGKILL a vault node 10 times at random
 * moments, two nodes on PostgreSQL; (b) stop and restart PostgreSQL; (c) on
 * PGlite, SIGKILL the only node 10 times. Each run ends with every answer
 * the clients got checked against the store (test/support/chaos.ts), and a
 * summary per scenario. Exits 1 when any rule broke.
 *
 *   npm run chaos [-- --only kill-nodes,restart-postgres,kill-pglite] [--clients 16] [--kills 10] [--outage-seconds 5]
 */
import { parseArgs } from 'node:util';
import { describeSummary, runChaos, type ChaosSummary, type Scenario } from '../test/support/chaos.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';

const SCENARIOS: Scenario[] = ['kill-nodes', 'restart-postgres', 'kill-pglite'];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    clients: { type: 'string', default: '16' },
    kills: { type: 'string', default: '10' },
    'outage-seconds': { type: 'string', default: '5' },
    nodes: { type: 'string', default: '2' },
  },
});
const chosen = values.only === undefined ? SCENARIOS : (values.only.split(',') as Scenario[]);
const unknown = chosen.filter((name) => !SCENARIOS.includes(name));
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  process.exit(2);
}

const needsPostgres = chosen.some((name) => name !== 'kill-pglite');
const postgres: ThrowawayPostgres | undefined = needsPostgres ? await startThrowawayPostgres({ name: 'chaos' }) : undefined;
const summaries: ChaosSummary[] = [];
try {
  for (const scenario of chosen) {
    console.log(`\n== ${scenario}`);
    const summary = await runChaos({
      scenario,
      clients: Number(values.clients),
      nodes: Number(values.nodes),
      kills: Number(values.kills),
      outageMs: Number(values['outage-seconds']) * 1000,
      calmMs: 3000,
      ...(postgres === undefined ? {} : { postgres }),
      log: (line) => console.log(`   ${line}`),
    });
    summaries.push(summary);
    for (const problem of summary.problems.slice(0, 20)) console.log(`   PROBLEM ${problem}`);
    if (summary.problems.length > 20) console.log(`   … and ${summary.problems.length - 20} more problems`);
    console.log(describeSummary(summary));
  }
} finally {
  await postgres?.destroy();
}
console.log('\nsummary');
for (const summary of summaries) console.log(`  ${describeSummary(summary)}`);
process.exit(summaries.every((summary) => summary.problems.length === 0 && summary.lost === 0) ? 0 : 1);
