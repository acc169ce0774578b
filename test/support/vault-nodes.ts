/**
 * Several vault processes on one database, as an operator runs them behind a
 * load balancer: each `npm run vault` of its own (one worker, so a kill hits
 * exactly one node), its own data folder and log, the same master and admin
 * keys. Requests are spread across the live nodes in turn (`next()`), and a
 * node can be killed and started again on the same port.
 */
import { randomBytes } from 'node:crypto';
import { startVaultProcess, type VaultProcess } from './vault-process.ts';
import { newDataDir, type StorageKind } from './vault.ts';

export interface VaultNode {
  readonly index: number;
  /** Stays the same across restarts. */
  readonly url: string;
  readonly dataDir: string;
  /** The running process, undefined while the node is down. */
  process: VaultProcess | undefined;
}

export interface VaultNodes {
  readonly storage: StorageKind;
  readonly nodes: readonly VaultNode[];
  readonly adminKey: string;
  readonly masterKey: string;
  readonly databaseUrl: string | undefined;
  /** The URL of the next live node, in turn. */
  next(): string;
  /** The URLs of the nodes that are up. */
  live(): string[];
  /** Kills node `index` (SIGKILL unless told otherwise) and waits for it to exit. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts node `index` again on its port and data folder; resolves once it listens. */
  restart(index: number): Promise<void>;
  /** Stops every node (SIGTERM). */
  close(): Promise<void>;
}

export interface VaultNodesOptions {
  /** Nodes to start; more than one needs `databaseUrl` (PGlite has one owner). */
  count: number;
  name: string;
  /** PostgreSQL for every node; PGlite (in the first node's data folder) without. */
  databaseUrl?: string | undefined;
  /** Extra environment for every node (limits, timeouts). */
  env?: Record<string, string>;
}

/**
 * Every test client is 127.0.0.x: the limits are as high as `startTestVault`
 * sets them, unless `env` sets its own.
 */
const TEST_LIMITS = {
  TESSERA_RATE_LIMIT_PER_IP: '100000',
  TESSERA_RATE_LIMIT_PER_KEY: '100000',
  TESSERA_DECLINES_PER_SESSION: '100000',
  TESSERA_DECLINES_PER_IP: '100000',
  TESSERA_DECLINES_PER_CARD: '100000',
  TESSERA_AUTH_FAILURES_PER_IP: '100000',
};

export async function startVaultNodes(options: VaultNodesOptions): Promise<VaultNodes> {
  const storage: StorageKind = options.databaseUrl === undefined ? 'pglite' : 'postgres';
  if (storage === 'pglite' && options.count !== 1) throw new TypeError('several vault nodes need PostgreSQL: PGlite has one owner');
  const masterKey = randomBytes(32).toString('base64');
  const adminKey = `admin_${randomBytes(18).toString('hex')}`;
  const env = {
    ...TEST_LIMITS,
    TESSERA_MASTER_KEY: masterKey,
    TESSERA_ADMIN_KEY: adminKey,
    // One process per node: a kill must take down exactly the node the test chose.
    TESSERA_WORKERS: '1',
    ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl }),
    ...options.env,
  };

  const nodes: VaultNode[] = [];
  const startNode = async (index: number, dataDir: string, port: number): Promise<VaultNode> => {
    // Generous: a node restarted after SIGKILL recovers its database first, on a machine busy with the load.
    const process = await startVaultProcess({ dataDir, env: { ...env, PORT: String(port) }, startTimeoutMs: 90_000 });
    return { index, url: process.url.replace('localhost', '127.0.0.1'), dataDir, process };
  };
  const dataDir = (index: number) => newDataDir(storage, `${options.name}-node${index}`);

  try {
    // The first node alone: it migrates an empty database and makes its first keys before the others start.
    nodes.push(await startNode(0, await dataDir(0), 0));
    const others = await Promise.all(
      Array.from({ length: options.count - 1 }, async (_, i) => startNode(i + 1, await dataDir(i + 1), 0)),
    );
    nodes.push(...others);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.process?.kill('SIGTERM')));
    throw error;
  }

  let turn = 0;
  const live = () => nodes.filter((node) => node.process !== undefined).map((node) => node.url);
  return {
    storage,
    nodes,
    adminKey,
    masterKey,
    databaseUrl: options.databaseUrl,
    live,
    next() {
      const up = live();
      if (up.length === 0) throw new Error('no vault node is up');
      return up[turn++ % up.length]!;
    },
    async kill(index, signal = 'SIGKILL') {
      const node = nodes[index]!;
      const running = node.process;
      node.process = undefined;
      await running?.kill(signal);
    },
    async restart(index) {
      const node = nodes[index]!;
      if (node.process !== undefined) throw new Error(`vault node ${index} is still running`);
      const port = Number(new URL(node.url).port);
      node.process = (await startNode(index, node.dataDir, port)).process;
    },
    async close() {
      await Promise.all(nodes.map(async (node) => {
        const running = node.process;
        node.process = undefined;
        await running?.kill('SIGTERM');
      }));
    },
  };
}
