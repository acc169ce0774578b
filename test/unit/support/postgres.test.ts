import { existsSync } from 'node:fs';
import { Client } from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresOrSkip } from '../../support/postgres.ts';

const cluster = await postgresOrSkip({ name: 'support-test' });

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

// The tests run in order: each one leaves the cluster in the state the next expects.
describe.runIf(cluster)('a throwaway PostgreSQL cluster', () => {
  // runIf already skips the suite without a cluster; the return narrows the type for the tests.
  if (!cluster) return;
  afterAll(() => cluster.destroy());

  test('listens on 127.0.0.1 at the port in its URL', () => {
    expect(cluster.url).toBe(`postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
  });

  test('creates an empty database that answers queries', async () => {
    const url = await cluster.createDatabase('support_test');

    expect(new URL(url).pathname).toBe('/support_test');
    await query(url, 'CREATE TABLE cards (last4 text)');
    await query(url, "INSERT INTO cards VALUES ('4242')");
    expect(await query(url, 'SELECT last4 FROM cards')).toEqual([{ last4: '4242' }]);
  });

  test('creates databases with distinct generated names', async () => {
    const [first, second] = await Promise.all([cluster.createDatabase(), cluster.createDatabase()]);

    expect(first).not.toBe(second);
  });

  test('refuses a database name that would need quoting', async () => {
    await expect(cluster.createDatabase('x"; DROP DATABASE postgres; --')).rejects.toThrow(TypeError);
  });

  test('refuses connections once stopped', async () => {
    await cluster.stop();

    await expect(query(cluster.url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
  });

  test('starts again on the same port with its data intact', async () => {
    await cluster.start();

    const url = new URL(cluster.url);
    url.pathname = '/support_test';
    expect(await query(url.toString(), 'SELECT last4 FROM cards')).toEqual([{ last4: '4242' }]);
  });

  test('removes its data directory when destroyed', async () => {
    await cluster.destroy();

    expect(existsSync(cluster.dataDir)).toBe(false);
    await expect(query(cluster.url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
  });
});
