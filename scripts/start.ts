/**
 * `npm start`, after the build: the vault and the demo shop as child
 * processes. The shop starts once the vault answers `/healthz` and has
 * written the demo merchant's keys; then the URLs are printed. Ctrl-C or
 * SIGTERM stops both; if either dies, the other is stopped and this exits 1.
 *
 * The vault gets `TESSERA_WEBHOOK_ALLOW_LOCAL=1`, so the shop can register
 * its webhook receiver on 127.0.0.1 (plain http, loopback): the shop does
 * that itself as it starts (demo/server/webhook-endpoint.ts), reusing the
 * endpoint of the previous start when the vault still has it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { dashboardPasswordPath, defaultWebhookUrl, demoMerchantPath, shopDataDir } from '../demo/server/config.ts';
import { webhookEndpointPath } from '../demo/server/webhook-endpoint.ts';
import { adminKeyPath } from '../server/keys/admin-key.ts';
import { DEMO_MERCHANT_ORIGIN } from '../server/merchants/demo.ts';

const ROOT = resolve(import.meta.dirname, '..');
/** The first start creates the embedded databases (the vault's, then the shop's), which takes a while on a slow disk. */
const VAULT_START_TIMEOUT_MS = 60_000;
const DEMO_START_TIMEOUT_MS = 60_000;
/** How long a child gets to shut down after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;
const POLL_INTERVAL_MS = 250;
const PROBE_TIMEOUT_MS = 1_000;

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(4000),
  DEMO_PORT: z.coerce.number().int().min(1).max(65535).default(4100),
  TESSERA_DATA_DIR: z.string().min(1).default('.tessera'),
  TESSERA_ADMIN_KEY: z.string().optional(),
  DEMO_DATA_DIR: z.string().min(1).optional(),
  DEMO_DASHBOARD_PASSWORD: z.string().optional(),
  DEMO_WEBHOOK_URL: z.string().optional(),
});

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
}

const children: Child[] = [];
let stopping = false;

/**
 * Node with tsx's loader, not the tsx CLI, so a signal reaches the server
 * itself. Detached (its own process group), so the terminal's Ctrl-C reaches
 * this script only and it alone decides when each child stops.
 */
function startChild(name: string, entry: string, env: NodeJS.ProcessEnv): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve();
      fail(`${name} exited unexpectedly (${signal ?? `code ${code}`}).`);
    });
    // Spawning failed: there is no process to wait for.
    child.once('error', (error) => {
      resolve();
      fail(`Could not start ${name}: ${error.message}.`);
    });
  });
  const started = { name, process: child, exited };
  children.push(started);
  return started;
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => {
    console.error(`${child.name} did not stop within ${STOP_GRACE_MS / 1000} s; killing it.`);
    child.process.kill('SIGKILL');
  }, STOP_GRACE_MS);
  await child.exited;
  clearTimeout(timer);
}

async function stopAll(exitCode: number): Promise<never> {
  stopping = true;
  await Promise.all(children.map(stopChild));
  process.exit(exitCode);
}

/** Reports the first failure and stops everything; later ones are consequences of the stop. */
function fail(message: string): void {
  if (stopping) return;
  console.error(`\n${message} Stopping.`);
  void stopAll(1);
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    console.log(`\n${signal}: stopping the demo shop and the vault…`);
    void stopAll(0);
  });
}

async function answers200(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Polls `ready` until it holds; throws `failure` after `timeoutMs`. While stopping, it never settles (the process is exiting). */
async function waitFor(failure: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!stopping) {
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${failure} within ${timeoutMs / 1000} s.`);
    await delay(POLL_INTERVAL_MS);
  }
  await new Promise<never>(() => {});
}

/** Whether something already listens on the loopback port: a second `npm start`, say, which would otherwise answer our probes. */
function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

async function main(): Promise<void> {
  const parsed = EnvSchema.safeParse(process.env);
  if (!parsed.success) {
    console.error(`Invalid environment:\n  ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('\n  ')}`);
    process.exit(1);
  }
  const env = parsed.data;
  // Absolute, so both children (started in the repository) and this script mean the same folder.
  const dataDir = resolve(env.TESSERA_DATA_DIR);
  const vaultUrl = `http://localhost:${env.PORT}`;
  const shopUrl = `http://localhost:${env.DEMO_PORT}`;

  for (const [port, variable] of [[env.PORT, 'PORT'], [env.DEMO_PORT, 'DEMO_PORT']] as const) {
    if (await portInUse(port)) {
      console.error(`Port ${port} (${variable}) is already in use on 127.0.0.1: is \`npm start\` already running? Stop it, or set ${variable}.`);
      process.exit(1);
    }
  }
  if (shopUrl !== DEMO_MERCHANT_ORIGIN) {
    console.warn(`Warning: the demo merchant allows the origin ${DEMO_MERCHANT_ORIGIN} only; the card fields will refuse ${shopUrl}.`);
  }

  console.log(`Starting the vault on ${vaultUrl}…`);
  // Development only: lets the vault send webhooks to http://127.0.0.1 and http://localhost (never on by default).
  startChild('The vault', 'server/main.ts', { ...process.env, PORT: String(env.PORT), TESSERA_DATA_DIR: dataDir, TESSERA_WEBHOOK_ALLOW_LOCAL: '1' });
  await waitFor(`The vault did not answer GET ${vaultUrl}/healthz with 200`, VAULT_START_TIMEOUT_MS, () => answers200(`${vaultUrl}/healthz`));
  // The vault writes the file before it listens, so once it answers the file is there or never will be.
  const merchantFile = demoMerchantPath(dataDir);
  if (!existsSync(merchantFile)) {
    throw new Error(
      `The vault is up, but ${merchantFile} does not exist: the vault writes it only on its first start with an empty store. ` +
        'Start with a new TESSERA_DATA_DIR (and an empty database if you set DATABASE_URL).',
    );
  }

  console.log(`Starting the demo shop on ${shopUrl}…`);
  startChild('The demo shop', 'demo/server/main.ts', {
    ...process.env,
    DEMO_PORT: String(env.DEMO_PORT),
    TESSERA_URL: vaultUrl,
    TESSERA_DATA_DIR: dataDir,
    DEMO_DATA_DIR: shopDataDir(dataDir, env.DEMO_DATA_DIR),
  });
  await waitFor(`The demo shop did not answer GET ${shopUrl}/api/config with 200`, DEMO_START_TIMEOUT_MS, () => answers200(`${shopUrl}/api/config`));

  const adminKey = env.TESSERA_ADMIN_KEY === undefined ? adminKeyPath(dataDir) : 'the TESSERA_ADMIN_KEY environment variable';
  const shopData = shopDataDir(dataDir, env.DEMO_DATA_DIR);
  // The shop wrote it before it started listening; a development password, printed like a dev server prints its URL.
  const dashboardPassword = env.DEMO_DASHBOARD_PASSWORD ?? readFileSync(dashboardPasswordPath(shopData), 'utf8').trim();
  // The shop registered it before listening; without it the shop's log says why (and it tries again at the next start).
  const webhooks = existsSync(webhookEndpointPath(shopData))
    ? `${env.DEMO_WEBHOOK_URL ?? defaultWebhookUrl(env.DEMO_PORT)}  (its signing secret in ${webhookEndpointPath(shopData)})`
    : 'not registered: the demo shop\'s log above says why';
  console.log(`
Tessera is running.

  Demo shop:              ${shopUrl}/
  Merchant dashboard:     ${shopUrl}/dashboard.html  (password: ${dashboardPassword})
  Vault:                  ${vaultUrl}
  Vault data folder:      ${dataDir}
  Shop data folder:       ${shopData}
  Admin key:              in ${adminKey}
  Demo merchant's keys:   ${merchantFile}
  Webhooks to the shop:   ${webhooks}

Test card 4242 4242 4242 4242, any future expiry date, any 3-digit CVC;
4000 0000 0000 9995 is declined for insufficient funds.
Press Ctrl-C to stop.
`);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
