import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTypeScriptWorker } from '../../server/lib/workers.ts';
import { dumpTables, filesUnder, scanLog, scanTableDump, withPostgres, type Finding } from '../support/leaks.ts';
import type { DataFolderScan, LeaksWorkerReply, LeaksWorkerRequest } from '../support/leaks-worker.ts';
import { shopTemplateDir } from '../support/shop.ts';
import { artifactsDir, pgliteTemplateDir } from '../support/vault.ts';

/**
 * Runs last (`npm test` runs the `leaks` project after every other test):
 * everything the suite's vaults and demo shops wrote — logs, databases, raw data files —
 * is searched for the test cards' numbers (plain and spaced), CVCs, card
 * JWEs and keys, as test/support/leaks.ts describes (test/api/leak-checks.test.ts
 * shows each kind of leak found in a real vault).
 */
const artifacts = artifactsDir();
const files = filesUnder(artifacts);
const logs = files.filter((f) => f.endsWith('.log'));
const pgliteDirs = [...new Set(files.filter((f) => basename(f) === 'PG_VERSION' && basename(dirname(f)) === 'pgdata').map((f) => dirname(dirname(f))))];
/** The PGlite templates the tests' data folders were copied from: scanned like them, so their unchanged files need not be read again. */
const templates = [pgliteTemplateDir(), shopTemplateDir()].filter((dir) => existsSync(join(dir, 'pgdata', 'PG_VERSION')));
const masterKeys = files.filter((f) => basename(f) === 'master.key').map((f) => readFileSync(f, 'utf8').trim());

const report = (findings: Finding[]) => findings.slice(0, 20).map((f) => `${f.what} in ${f.where}`);

/** Scans file by file, letting the event loop turn between files: thousands of them, read synchronously, would block it for long. */
async function scanEach(files: string[], scan: (file: string) => Finding[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const file of files) {
    findings.push(...scan(file));
    await new Promise((resolve) => setImmediate(resolve));
  }
  return findings;
}

/**
 * Every data folder's raw files and embedded database, searched by one thread
 * per core (test/support/leaks-worker.ts), each taking the next folder as it
 * finishes one. Started once, when the file loads; the tests below read it.
 */
function scanDataFolders(dirs: string[]): Promise<DataFolderScan[]> {
  const queue = [...dirs];
  const scans: DataFolderScan[] = [];
  const threads = Math.max(1, Math.min(availableParallelism(), dirs.length));
  return Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<void>((resolve, reject) => {
          const worker = startTypeScriptWorker(new URL('../support/leaks-worker.ts', import.meta.url));
          const next = () => {
            const dir = queue.shift();
            worker.postMessage((dir === undefined ? null : { dir, templates }) satisfies LeaksWorkerRequest);
          };
          worker.on('message', (reply: LeaksWorkerReply) => {
            if ('error' in reply) {
              reject(new Error(reply.error));
              void worker.terminate();
              return;
            }
            if ('scan' in reply) scans.push(reply.scan);
            next();
          });
          worker.once('error', reject);
          worker.once('exit', () => resolve());
        }),
    ),
  ).then(() => scans);
}
const dataFolders = scanDataFolders([...templates, ...pgliteDirs]);
// Awaited by the tests below; a failure is reported there, not as an unhandled rejection.
dataFolders.catch(() => undefined);

describe('no card data at rest after the whole suite', () => {
  it('found the suite’s logs and data folders to search', () => {
    expect(logs.length).toBeGreaterThan(5);
    expect(pgliteDirs.length).toBeGreaterThan(3);
  });

  it('logs contain no card number, CVC, card JWE, secret key or master key', async () => {
    const findings = await scanEach(logs, (log) => scanLog(log, masterKeys));
    expect(report(findings)).toEqual([]);
    const lines = logs.reduce((n, log) => n + readFileSync(log, 'utf8').split('\n').length, 0);
    expect(lines).toBeGreaterThan(100);
  });

  it('raw files of every data folder contain no card number or CVC', async () => {
    const scans = await dataFolders;
    expect(scans.map((scan) => scan.dir).sort()).toEqual([...templates, ...pgliteDirs].sort());
    expect(scans.reduce((n, scan) => n + scan.rawFiles - scan.unchangedFiles, 0)).toBeGreaterThan(100);
    expect(report(scans.flatMap((scan) => scan.rawFindings))).toEqual([]);
    // The whole scan, which began when the file loaded: gigabytes of raw files, and every database opened (a third of
    // a second of CPU each) — the vaults', and the demo shops' since they have their own.
  }, 300_000);

  it('no text or bytea column of any embedded database holds a card number or CVC', async () => {
    const scans = await dataFolders;
    expect(scans.reduce((n, scan) => n + scan.tokensSeen, 0)).toBeGreaterThan(0);
    expect(report(scans.flatMap((scan) => scan.tableFindings))).toEqual([]);
  });

  it.skipIf(!process.env['TESSERA_TEST_PG_URL'])('no text or bytea column of any PostgreSQL test database holds a card number or CVC', async () => {
    const serverUrl = process.env['TESSERA_TEST_PG_URL']!;
    const databases = await withPostgres(serverUrl, async (query) =>
      (await query(`select datname from pg_database where datname like 'test\\_%'`)).map((r) => String(r['datname'])),
    );
    expect(databases.length).toBeGreaterThan(0);
    const findings: Finding[] = [];
    for (const name of databases) {
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      await withPostgres(url.toString(), async (query) => {
        for (const dump of await dumpTables(query)) findings.push(...scanTableDump(name, dump));
      });
    }
    expect(report(findings)).toEqual([]);
  });
});
