import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { findOnPath, isExecutable } from './executables.ts';
import { freePort } from './ports.ts';

const execFileAsync = promisify(execFile);

/** A PostgreSQL cluster of its own for a test run, on 127.0.0.1 with trust auth. */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres`: no password, the cluster trusts loopback. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Fast shutdown (`pg_ctl stop -m fast`); the data stays, and `start()` brings it back. */
  stop(): Promise<void>;
  /** Starts the stopped cluster again, on the same port and data. */
  start(): Promise<void>;
  /** Stops the cluster and deletes everything it wrote. */
  destroy(): Promise<void>;
  /** Creates an empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
}

const CLUSTER_OWNER = 'postgres';
const READY_TIMEOUT_MS = 15_000;
const PG_CTL_TIMEOUT_S = 15;
const INITDB_TIMEOUT_MS = 60_000;
/** Extra time for runuser and pg_ctl themselves, beyond pg_ctl's own wait. */
const COMMAND_SLACK_MS = 5_000;
const LOG_TAIL_LINES = 20;

/**
 * Settings for a disposable cluster: TCP on loopback only, no Unix socket (the
 * socket path length limit and directory permissions are only trouble here), and
 * no durability, which a cluster deleted after the run does not need.
 */
const CLUSTER_SETTINGS = `
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
`;

/**
 * Starts a new cluster in a temporary directory. Fails with an Error that carries
 * the reason and the end of the server log.
 */
export async function startThrowawayPostgres(opts: { name?: string } = {}): Promise<ThrowawayPostgres> {
  const binDir = await findPostgresBin();
  if (!binDir) {
    throw new Error(
      'PostgreSQL is not installed: no initdb on PATH or under /usr/lib/postgresql/<version>/bin ' +
        '(on Debian: `apt-get install postgresql`).',
    );
  }
  const owner = await clusterOwner();
  const port = await freePort();
  const baseDir = await mkdtemp(join(tmpdir(), `tessera-pg-${safeName(opts.name ?? 'cluster')}-`));
  const cluster = new Cluster({ binDir, owner, baseDir, port });
  try {
    await cluster.init();
    await cluster.start();
    return cluster;
  } catch (error) {
    cluster.destroyNow();
    throw error;
  }
}

/**
 * The directory holding initdb and pg_ctl: found on PATH, else the newest of
 * Debian's `/usr/lib/postgresql/<version>/bin`, which Debian keeps off PATH.
 */
export async function findPostgresBin(): Promise<string | null> {
  const onPath = await findOnPath('initdb');
  if (onPath) return dirname(await realpath(onPath));

  const versions = await readdir('/usr/lib/postgresql').catch(() => []);
  const newestFirst = versions.filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const version of newestFirst) {
    const binDir = join('/usr/lib/postgresql', version, 'bin');
    if (await isExecutable(join(binDir, 'initdb'))) return binDir;
  }
  return null;
}

/**
 * Creates a database on the server at `serverUrl` and returns its URL: an
 * empty one, or a copy of the database `template`.
 */
export async function createTestDatabase(serverUrl: string, name = `test_${randomBytes(6).toString('hex')}`, template?: string): Promise<string> {
  // Identifiers cannot be bound as query parameters, so the names are held to a safe shape instead.
  for (const identifier of [name, ...(template === undefined ? [] : [template])]) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(identifier)) {
      throw new TypeError(`Database name "${identifier}" must be lower case letters, digits and underscores.`);
    }
  }
  const client = new Client({ connectionString: serverUrl, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"${template === undefined ? '' : ` TEMPLATE "${template}"`}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The one policy for a missing PostgreSQL: under `CI=true` it is a failure (CI must
 * exercise the PostgreSQL store), elsewhere the caller skips its PostgreSQL tests after
 * a banner nobody can miss. Returns the started cluster, or undefined to skip.
 */
export async function postgresOrSkip(opts: { name?: string } = {}): Promise<ThrowawayPostgres | undefined> {
  try {
    return await startThrowawayPostgres(opts);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.CI === 'true') {
      throw new Error(`PostgreSQL is required when CI=true, and it could not be started: ${reason}`);
    }
    console.warn(skipBanner(reason));
    return undefined;
  }
}

function skipBanner(reason: string): string {
  const rule = '!'.repeat(78);
  return [
    rule,
    '!! PostgreSQL is unavailable: SKIPPING the tests that need it.',
    '!! Install PostgreSQL to run them; with CI=true this is a failure.',
    ...reason.split('\n').map((line) => `!! ${line}`),
    rule,
  ].join('\n');
}

/** initdb refuses to run as root, so root hands the cluster to the `postgres` OS user. */
interface ClusterOwner {
  /** Set when the cluster's files must be chowned to another user. */
  ids?: { uid: number; gid: number };
  command(file: string, args: readonly string[]): { file: string; args: string[] };
}

async function clusterOwner(): Promise<ClusterOwner> {
  if (process.getuid?.() !== 0) return { command: (file, args) => ({ file, args: [...args] }) };

  const ids = await osUserIds(CLUSTER_OWNER);
  if (await findOnPath('runuser')) {
    return { ids, command: (file, args) => ({ file: 'runuser', args: ['-u', CLUSTER_OWNER, '--', file, ...args] }) };
  }
  if (await findOnPath('su')) {
    return {
      ids,
      command: (file, args) => ({
        file: 'su',
        args: [CLUSTER_OWNER, '-s', '/bin/sh', '-c', [file, ...args].map(shellQuote).join(' ')],
      }),
    };
  }
  throw new Error('Running as root, but neither runuser nor su is available to run initdb as the postgres user.');
}

async function osUserIds(user: string): Promise<{ uid: number; gid: number }> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', user]).then(({ stdout }) => Number(stdout.trim())),
      execFileAsync('id', ['-g', user]).then(({ stdout }) => Number(stdout.trim())),
    ]);
    return { uid, gid };
  } catch (error) {
    throw new Error(
      `Running as root, and initdb refuses root, but there is no "${user}" OS user to own the cluster ` +
        '(installing the postgresql package creates it).',
      { cause: error },
    );
  }
}

class Cluster implements ThrowawayPostgres {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  private readonly binDir: string;
  private readonly owner: ClusterOwner;
  /** Owned by the cluster's OS user; holds the data directory and the server log. */
  private readonly baseDir: string;
  private readonly logFile: string;
  /** Stops the server if the test process exits without calling destroy(), e.g. on a crash. */
  private readonly exitHook = (): void => this.destroyNow();

  constructor(where: { binDir: string; owner: ClusterOwner; baseDir: string; port: number }) {
    this.binDir = where.binDir;
    this.owner = where.owner;
    this.baseDir = where.baseDir;
    this.port = where.port;
    this.dataDir = join(where.baseDir, 'data');
    this.logFile = join(where.baseDir, 'postgres.log');
    this.url = `postgres://postgres@127.0.0.1:${where.port}/postgres`;
    process.on('exit', this.exitHook);
  }

  async init(): Promise<void> {
    if (this.owner.ids) await chown(this.baseDir, this.owner.ids.uid, this.owner.ids.gid);
    await this.pgCommand(
      'initdb',
      [
        `--pgdata=${this.dataDir}`,
        '--auth=trust',
        '--username=postgres',
        '--encoding=UTF8',
        // The machine's locales may not be generated; C always exists.
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      INITDB_TIMEOUT_MS,
    );
    await appendFile(join(this.dataDir, 'postgresql.conf'), CLUSTER_SETTINGS);
  }

  async start(): Promise<void> {
    if (this.isRunning()) return;
    await this.pgCtl(['start', `--log=${this.logFile}`, `--options=-p ${this.port}`]);
    await this.waitForConnections();
  }

  async stop(): Promise<void> {
    if (!this.isRunning()) return;
    await this.pgCtl(['stop', '--mode=fast']);
  }

  async destroy(): Promise<void> {
    process.off('exit', this.exitHook);
    try {
      await this.stop();
    } finally {
      await rm(this.baseDir, { recursive: true, force: true });
    }
  }

  createDatabase(name?: string): Promise<string> {
    return createTestDatabase(this.url, name);
  }

  /**
   * Immediate shutdown and removal, synchronous because it also runs in the process
   * `exit` event. Best effort: it only cleans up after something already failed.
   */
  destroyNow(): void {
    process.off('exit', this.exitHook);
    if (this.isRunning()) {
      const { file, args } = this.owner.command(join(this.binDir, 'pg_ctl'), [
        'stop',
        `--pgdata=${this.dataDir}`,
        '--mode=immediate',
      ]);
      spawnSync(file, args, { cwd: this.baseDir, stdio: 'ignore', timeout: PG_CTL_TIMEOUT_S * 1000 });
    }
    rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** The server holds postmaster.pid while it runs; one left by a crash is handled by pg_ctl. */
  private isRunning(): boolean {
    return existsSync(join(this.dataDir, 'postmaster.pid'));
  }

  private pgCtl(args: readonly string[]): Promise<void> {
    return this.pgCommand(
      'pg_ctl',
      [...args, `--pgdata=${this.dataDir}`, '--wait', `--timeout=${PG_CTL_TIMEOUT_S}`, '--silent'],
      PG_CTL_TIMEOUT_S * 1000 + COMMAND_SLACK_MS,
    );
  }

  private async pgCommand(program: string, args: readonly string[], timeoutMs: number): Promise<void> {
    const { file, args: fullArgs } = this.owner.command(join(this.binDir, program), args);
    try {
      // The cluster's OS user may not be allowed into the caller's working directory.
      await execFileAsync(file, fullArgs, { cwd: this.baseDir, timeout: timeoutMs });
    } catch (error) {
      throw new Error(`PostgreSQL \`${program} ${args[0]}\` failed: ${await this.explain(error)}`, { cause: error });
    }
  }

  /** pg_ctl reports ready from postmaster.pid; connecting proves the port answers. */
  private async waitForConnections(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 1_000, query_timeout: 1_000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (error) {
        if (Date.now() >= deadline) {
          const seconds = READY_TIMEOUT_MS / 1000;
          throw new Error(`PostgreSQL started but refused connections for ${seconds} s: ${await this.explain(error)}`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }

  /** The failure, followed by the end of the server log, which usually names the real cause. */
  private async explain(error: unknown): Promise<string> {
    const stderr = error instanceof Error && 'stderr' in error ? String(error.stderr).trim() : '';
    const message = stderr || (error instanceof Error ? error.message : String(error));
    const log = await readFile(this.logFile, 'utf8').catch(() => '');
    if (!log) return message;
    const tail = log.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
    return `${message}\n--- last lines of ${this.logFile} ---\n${tail}`;
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40);
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
