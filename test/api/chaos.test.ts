/**
 * Faults under load, the short version of `npm run chaos` (issue #14): 16
 * clients tokenizing and paying while vault nodes are killed with SIGKILL
 * or PostgreSQL stops, then every answer they got is checked against the
 * store (test/support/chaos.ts). Fewer kills than the long run, so the file
 * stays within about a minute.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { describeSummary, runChaos, type ChaosSummary } from '../support/chaos.ts';
import { postgresOrSkip, type ThrowawayPostgres } from '../support/postgres.ts';

const CLIENTS = 16;
const KILLS = 3;

/** restart-postgres stops its cluster, so this file runs on a PostgreSQL of its own. */
const cluster: ThrowawayPostgres | undefined = await postgresOrSkip({ name: 'chaos' });
afterAll(() => cluster?.destroy());

function expectNothingLost(summary: ChaosSummary): void {
  console.log(describeSummary(summary));
  expect(summary.problems).toEqual([]);
  expect(summary.acknowledged).toBeGreaterThan(CLIENTS);
  expect(summary.verified).toBe(summary.acknowledged);
  expect(summary.lost).toBe(0);
}

describe.skipIf(cluster === undefined)('faults under load on PostgreSQL', () => {
  it(`keeps every acknowledged token and payment, and leaves nothing half-done, when a vault node of two is killed ${KILLS} times`, async () => {
    const summary = await runChaos({ scenario: 'kill-nodes', clients: CLIENTS, nodes: 2, kills: KILLS, calmMs: 500, postgres: cluster! });
    expect(summary.faults).toHaveLength(KILLS);
    expectNothingLost(summary);
  }, 120_000);

  it('answers 503 within 2 s while PostgreSQL is down, recovers without a restart, and loses nothing', async () => {
    const summary = await runChaos({ scenario: 'restart-postgres', clients: CLIENTS, nodes: 2, outageMs: 2000, calmMs: 500, postgres: cluster! });
    expect(summary.outage!.requests).toBeGreaterThan(0);
    expect(summary.outage!.slowestMs).toBeLessThanOrEqual(2000);
    expectNothingLost(summary);
  }, 120_000);
});

describe('faults under load on PGlite', () => {
  it(`keeps every acknowledged token and payment, and leaves nothing half-done, when the only vault node is killed ${KILLS} times`, async () => {
    const summary = await runChaos({ scenario: 'kill-pglite', clients: CLIENTS, kills: KILLS, calmMs: 500 });
    expect(summary.faults).toHaveLength(KILLS);
    expectNothingLost(summary);
  }, 180_000);
});
