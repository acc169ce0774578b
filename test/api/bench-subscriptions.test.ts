/**
 * The subscription benchmark (`npm run bench:subscriptions`) in short: the
 * same run, with 120 subscriptions instead of 10,000, so the suite keeps the
 * benchmark working and its checks true. No time is asserted. 120 is more
 * than one charge job's claim (100, server/subscriptions/charger.ts), so the
 * advance still takes more than one claim (from either process, on
 * PostgreSQL) and the once-only checks count across claims; the size of the
 * run is what the benchmark itself is for.
 */
import { describe, expect, it } from 'vitest';
import { benchAdvance, chargedEachPeriodOnce } from '../../bench/subscription-advance.ts';
import { newTestDatabase, storageKinds } from '../support/vault.ts';

const SUBSCRIPTIONS = 120;

describe.each(storageKinds())('the subscription benchmark, short, on %s', (storage) => {
  it(`charges each of ${SUBSCRIPTIONS} due periods once in one clock advance${storage === 'postgres' ? ', shared by two vault processes' : ''}`, async () => {
    const result = await benchAdvance(
      storage === 'postgres'
        ? { storage, nodes: 2, subscriptions: SUBSCRIPTIONS, databaseUrl: await newTestDatabase(), cards: 10 }
        : { storage, nodes: 1, subscriptions: SUBSCRIPTIONS, cards: 10 },
    );
    expect(result.check).toEqual({ charged: SUBSCRIPTIONS, payments: SUBSCRIPTIONS, authorizations: SUBSCRIPTIONS, periodsChargedTwice: 0, periodsMissed: 0 });
    expect(chargedEachPeriodOnce(result)).toBe(true);
    expect(result.perNode).toHaveLength(storage === 'postgres' ? 2 : 1);
  }, 180_000);
});
