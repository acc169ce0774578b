/**
 * `npm run test:fresh-clone` (also a step of `npm test`): the README's two
 * commands, tried as a new user would. Clones the committed HEAD of this
 * repository into a temporary folder, runs `npm install` (from npm's cache
 * when it can) and then `npm start`, waits until the vault and the shop both
 * answer (the shop with its webhook endpoint registered), presses Ctrl-C
 * (SIGINT to the foreground process group, as a terminal does) and checks
 * that `npm start` and every process it started have exited. Uncommitted
 * changes are not part of the clone, by design.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort, portFree } from '../test/support/ports.ts';

const ROOT = resolve(import.meta.dirname, '..');
const INSTALL_TIMEOUT_MS = 4 * 60_000;
const START_TIMEOUT_MS = 3 * 60_000;
const STOP_TIMEOUT_MS = 30_000;

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Processes whose working directory is inside `dir` (Linux: /proc); elsewhere, none are known and only the ports are checked. */
function processesIn(dir: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  return entries.flatMap((pid) => {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      return cwd === dir || cwd.startsWith(`${dir}/`) ? [Number(pid)] : [];
    } catch {
      return [];
    }
  });
}

function isGitWorkTree(): boolean {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === 'true';
  } catch {
    return false;
  }
}

/** What a checkout has that a clone would not: installed packages, builds, data folders, test output. */
const notInAClone = (path: string): boolean => {
  const top = path.split(sep)[0] ?? '';
  return ['node_modules', 'dist', 'test-results', '.git'].includes(top) || top.startsWith('.tessera');
};

/**
 * The committed HEAD, cloned; or, where this checkout is not a git work tree
 * (an exported source tree, say), a copy of it without what a clone lacks.
 */
function cloneInto(clone: string): void {
  if (isGitWorkTree()) {
    step(`git clone ${ROOT} (${execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()})`);
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone], { stdio: 'inherit' });
    return;
  }
  step(`${ROOT} is not a git work tree: copying its sources instead of cloning`);
  cpSync(ROOT, clone, { recursive: true, filter: (source) => !notInAClone(relative(ROOT, source)) });
}

function step(message: string): void {
  console.log(`fresh clone: ${message}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'tessera-fresh-clone-'));
  const clone = join(work, 'tessera');
  // The environment of a new user: none of this run's test or vault settings.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(TESSERA_|DEMO_|PORT$|CHROMIUM_PATH$|npm_)/.test(name)));
  let npmStart: ReturnType<typeof spawn> | undefined;
  try {
    cloneInto(clone);

    step('npm install');
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: clone, env, stdio: 'inherit', timeout: INSTALL_TIMEOUT_MS });

    // The README's ports when they are free; a developer's own `npm start` may hold them.
    const defaults = (await portFree(4000)) && (await portFree(4100));
    const ports = defaults ? { vault: 4000, shop: 4100 } : { vault: await freePort(), shop: await freePort() };
    if (!defaults) step(`ports 4000/4100 are taken; using ${ports.vault}/${ports.shop}`);
    step('npm start');
    let output = '';
    // Its own process group, as a terminal's foreground job is, so Ctrl-C can be sent to the whole group.
    npmStart = spawn('npm', ['start'], {
      cwd: clone,
      env: defaults ? env : { ...env, PORT: String(ports.vault), DEMO_PORT: String(ports.shop) },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    npmStart.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    npmStart.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<string>((done) => npmStart!.once('exit', (code, signal) => done(signal ?? `code ${code}`)));

    const vaultUrl = `http://localhost:${ports.vault}/healthz`;
    const shopUrl = `http://localhost:${ports.shop}/`;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(output.includes('Tessera is running.') && (await answers(vaultUrl)) && (await answers(shopUrl)))) {
      if (npmStart.exitCode !== null) throw new Error(`npm start exited (code ${npmStart.exitCode}) before both answered:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the vault and the shop did not both answer within ${START_TIMEOUT_MS / 1000} s:\n${output}`);
      await delay(500);
    }
    const running = processesIn(clone);
    step(`both answer (${vaultUrl}, ${shopUrl}) after ${Math.round((Date.now() - started) / 1000)} s; ${running.length} processes run in the clone`);
    if (!output.includes(`Demo shop:              http://localhost:${ports.shop}/`) || !/Merchant dashboard: .*\(password: \S+\)/.test(output)) {
      throw new Error(`npm start did not print the shop's URL and the dashboard password:\n${output}`);
    }
    // The shop registered its webhook receiver at the vault as it started (and saved the endpoint's secret).
    if (!output.includes(`Webhooks to the shop:   http://127.0.0.1:${ports.shop}/webhooks/tessera `)) {
      throw new Error(`npm start did not register the shop's webhook endpoint:\n${output}`);
    }

    step('Ctrl-C');
    process.kill(-npmStart.pid!, 'SIGINT');
    // An unreferenced timer: once npm start has exited, nothing should keep this script waiting.
    const code = await Promise.race([exited, delay(STOP_TIMEOUT_MS, 'timeout' as const, { ref: false })]);
    if (code === 'timeout') throw new Error(`npm start did not exit within ${STOP_TIMEOUT_MS / 1000} s of Ctrl-C:\n${output}`);
    // Its children stop after it has printed; give the last of them a moment to be reaped.
    for (let tries = 0; tries < 20 && processesIn(clone).length > 0; tries++) await delay(250);
    const left = processesIn(clone);
    if (left.length > 0) throw new Error(`processes still running after Ctrl-C: ${left.join(', ')}`);
    if ((await answers(vaultUrl)) || (await answers(shopUrl))) throw new Error('a port still answers after Ctrl-C');
    if (!output.includes('stopping the demo shop and the vault')) throw new Error(`npm start did not say it was stopping:\n${output}`);
    step(`npm start exited (${code}) and every process it started has stopped; ${Math.round((Date.now() - started) / 1000)} s in all`);
  } finally {
    if (npmStart?.pid !== undefined && npmStart.exitCode === null) {
      try {
        process.kill(-npmStart.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    for (const pid of processesIn(clone)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`fresh clone: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
