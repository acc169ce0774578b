import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig, type VaultConfig } from '../../server/config.ts';
import type { WidgetAssets } from '../../server/fields/assets.ts';
import { createVaultServer } from '../../server/http/server.ts';
import { createLogger } from '../../server/log.ts';
import { migrate, schemaSources } from '../../server/storage/migrate.ts';
import { openPglite } from '../../server/storage/pglite.ts';
import { openPostgres } from '../../server/storage/postgres.ts';
import { openVault, type Vault } from '../../server/vault.ts';
import './pglite-wasm.ts';
import { createTestDatabase } from './postgres.ts';

export type StorageKind = 'pglite' | 'postgres';

export interface TestVault {
  url: string;
  storage: StorageKind;
  adminKey: string;
  dataDir: string;
  /** Every log line this vault wrote, one JSON object per line. */
  logFile: string;
  databaseUrl: string | undefined;
  vault: Vault;
  close(): Promise<void>;
}

/** Where tests put data folders and logs; `npm test` points it at this run's artifacts for the leak checks. */
export function artifactsDir(): string {
  const dir = process.env['TESSERA_TEST_ARTIFACTS'] ?? join(tmpdir(), 'tessera-test-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The storage kinds this run can test: PostgreSQL only when `npm test` started a cluster. */
export function storageKinds(): StorageKind[] {
  if (process.env['TESSERA_TEST_PG_URL']) return ['pglite', 'postgres'];
  if (process.env['CI'] === 'true') throw new Error('CI=true but TESSERA_TEST_PG_URL is not set: the PostgreSQL tests cannot run.');
  return ['pglite'];
}



/** Names a template by the schema it holds: a changed migration or function makes a new one. */
function schemaHash(): string {
  const hash = createHash('sha256');
  const { migrations, functions } = schemaSources();
  for (const file of [...migrations, ...functions]) hash.update(file.name).update(file.checksum);
  return hash.digest('hex').slice(0, 16);
}

/** Where this schema's PGlite template lives (made by the first test that needs it). */
export function pgliteTemplateDir(): string {
  return join(tmpdir(), `tessera-pglite-template-${schemaHash()}`);
}

/**
 * `dir`, a template data folder that `make` fills: made once, by one test
 * process (the others wait for it, rather than each spending the seconds of
 * CPU on a copy of their own: the test processes start together), built
 * aside and renamed into place, then reused by every later test and run
 * until its name changes. A maker that died leaves its lock to the next.
 */
export async function madeOnce(dir: string, make: (building: string) => Promise<void>): Promise<string> {
  if (existsSync(join(dir, 'pgdata'))) return dir;
  const unlock = await lockTemplate(dir);
  try {
    if (existsSync(join(dir, 'pgdata'))) return dir;
    const building = `${dir}.building-${process.pid}-${randomBytes(4).toString('hex')}`;
    await make(building);
    try {
      renameSync(building, dir);
    } catch {
      rmSync(building, { recursive: true, force: true });
    }
    return dir;
  } finally {
    unlock();
  }
}

/** `<dir>.lock`, holding its maker's pid: waits while a live process holds it, takes it over from a dead one. */
async function lockTemplate(dir: string): Promise<() => void> {
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (!lockHolderAlive(lock)) {
      rmSync(lock, { force: true });
      continue;
    }
    if (existsSync(join(dir, 'pgdata'))) return () => undefined;
    await sleep(200);
  }
}

function lockHolderAlive(lock: string): boolean {
  let text: string;
  try {
    text = readFileSync(lock, 'utf8');
  } catch {
    return true; // gone already: the next attempt takes it
  }
  // Created but its pid not yet written: alive, unless that was long ago.
  if (text === '') return Date.now() - statSync(lock).mtimeMs < 10_000;
  try {
    process.kill(Number(text), 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A freshly migrated PGlite data folder, made once and copied for each test
 * vault: initialising PGlite takes seconds, copying it milliseconds. It is
 * itself a copy of the empty template, migrated: PGlite's initdb (some 6.6 s
 * of CPU on the baseline compiler) runs once for the vault's, the empty and
 * the demo shop's templates, not once each.
 */
async function pgliteTemplate(): Promise<string> {
  return madeOnce(pgliteTemplateDir(), async (building) => {
    const db = await openPglite(await copyOfEmptyPglite(building));
    await migrate(db);
    await db.close();
  });
}

/**
 * An initialised PGlite data folder with nothing migrated, made once (per PGlite
 * version) and copied, as `pgliteTemplate` is for migrated ones: a new PGlite's
 * initdb takes many seconds, a copy milliseconds.
 */
async function emptyPgliteTemplate(): Promise<string> {
  const pgliteDist = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  const { version } = JSON.parse(readFileSync(join(pgliteDist, '..', 'package.json'), 'utf8')) as { version: string };
  return madeOnce(join(tmpdir(), `tessera-pglite-empty-${version}`), async (building) => (await openPglite(building)).close());
}

/** `dataDir` (made if need be) holding a copy of the empty PGlite template in its `pgdata`: for a template of a schema. */
export async function copyOfEmptyPglite(dataDir: string): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  cpSync(join(await emptyPgliteTemplate(), 'pgdata'), join(dataDir, 'pgdata'), { recursive: true });
  return dataDir;
}

/**
 * A new data folder under the artifacts holding an initialised but empty PGlite
 * (no migration applied), for a test that builds its schema itself.
 */
export async function newEmptyPgliteDir(name: string): Promise<string> {
  return copyOfEmptyPglite(join(artifactsDir(), `${name}-${randomBytes(4).toString('hex')}`));
}

/**
 * A new data folder under the artifacts (or `parent`), holding a migrated
 * embedded database when `storage` is PGlite.
 */
export async function newDataDir(storage: StorageKind, name: string, parent = artifactsDir()): Promise<string> {
  const dataDir = join(parent, `${name}-${storage}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dataDir, { recursive: true });
  // With the template's modification times, so that the leak scan can tell the files no vault wrote (test/support/leaks-worker.ts).
  if (storage === 'pglite') cpSync(join(await pgliteTemplate(), 'pgdata'), join(dataDir, 'pgdata'), { recursive: true, preserveTimestamps: true });
  return dataDir;
}

export interface StartOptions {
  storage?: StorageKind;
  name?: string;
  /** Reuse a data folder (and PostgreSQL database) from a previous vault, as after a restart. */
  dataDir?: string;
  databaseUrl?: string;
  env?: Record<string, string>;
  /** The widget build to serve, when not the one in dist/. */
  widget?: WidgetAssets;
  /** `false`: background jobs wait until the test calls `vault.jobs.start()`. */
  jobs?: boolean;
}

/**
 * A new database on the run's PostgreSQL cluster, migrated: a copy of a
 * template migrated once per cluster and schema, as PGlite data folders are
 * copies of theirs (migrating took a quarter of a second of the server's CPU
 * for every database, and the suite makes a hundred).
 */
export async function newTestDatabase(): Promise<string> {
  const serverUrl = testPostgresUrl();
  return createTestDatabase(serverUrl, undefined, await postgresTemplate(serverUrl));
}

/** An empty database on the run's PostgreSQL cluster, for a test that builds its schema itself. */
export async function emptyTestDatabase(): Promise<string> {
  return createTestDatabase(testPostgresUrl());
}

function testPostgresUrl(): string {
  const serverUrl = process.env['TESSERA_TEST_PG_URL'];
  if (!serverUrl) throw new Error('TESSERA_TEST_PG_URL is not set; run the PostgreSQL tests through `npm test`.');
  return serverUrl;
}

/** Serialises the test processes that look for the template, so one makes it and the others wait. */
const TEMPLATE_LOCK = 73_011_901;
const postgresTemplates = new Map<string, Promise<string>>();

/**
 * The migrated template database on the cluster at `serverUrl`, made by the
 * first test process that needs it. Nothing connects to it afterwards, which
 * PostgreSQL requires of a database it copies. Migrating is one transaction,
 * so a process killed while making it leaves it empty at worst, and a vault
 * opening a copy migrates that as it would any database.
 */
function postgresTemplate(serverUrl: string): Promise<string> {
  let template = postgresTemplates.get(serverUrl);
  if (template === undefined) {
    template = makePostgresTemplate(serverUrl);
    template.catch(() => postgresTemplates.delete(serverUrl));
    postgresTemplates.set(serverUrl, template);
  }
  return template;
}

async function makePostgresTemplate(serverUrl: string): Promise<string> {
  const name = `tessera_template_${schemaHash()}`;
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [TEMPLATE_LOCK]);
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount === 0) {
      const db = await openPostgres(await createTestDatabase(serverUrl, name), createLogger({ level: 'silent' }));
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
    }
  } finally {
    await client.end();
  }
  return name;
}

/** A real vault on a loopback port, with its own data folder, database and log file. */
export async function startTestVault(options: StartOptions = {}): Promise<TestVault> {
  const storage = options.storage ?? 'pglite';
  const dataDir = options.dataDir ?? (await newDataDir(storage, options.name ?? 'vault'));
  const databaseUrl = options.databaseUrl ?? (storage === 'postgres' ? await newTestDatabase() : undefined);

  const config: VaultConfig = loadConfig({
    TESSERA_DATA_DIR: dataDir,
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
    // Every test client is 127.0.0.1: the per-IP and card-testing limits have tests of their own, which set them.
    TESSERA_RATE_LIMIT_PER_IP: '100000',
    TESSERA_RATE_LIMIT_PER_KEY: '100000',
    TESSERA_DECLINES_PER_SESSION: '100000',
    TESSERA_DECLINES_PER_IP: '100000',
    TESSERA_DECLINES_PER_CARD: '100000',
    TESSERA_AUTH_FAILURES_PER_IP: '100000',
    ...options.env,
  });
  const logFile = join(dataDir, 'vault.log');
  const log = createLogger({ level: 'info', destination: pino.destination({ dest: logFile, sync: true, append: true }) });
  const vault = await openVault(config, {
    log,
    ...(options.widget === undefined ? {} : { widget: options.widget }),
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
  });
  const server: Server = await new Promise((resolve) => {
    const s = createVaultServer(vault.app, config.http).listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    storage,
    adminKey: vault.deps.adminKey,
    dataDir,
    logFile,
    databaseUrl,
    vault,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await vault.close();
    },
  };
}
