import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { bundled } from './bundle.ts';
import { TEST_V8_FLAGS } from './pglite-wasm.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const START_TIMEOUT_MS = 30_000;

/**
 * The time limit of a test that starts vault processes one after another
 * (restarts, kills, fresh data folders): each start costs some 5 s of CPU
 * (PGlite's WebAssembly and its worker threads; a fresh folder runs initdb
 * too), so on a busy 2-core machine three of them passed Vitest's usual
 * 30 s while nothing was wrong.
 */
export const START_HEAVY_MS = 120_000;

/**
 * Node's arguments to run `entry` (a TypeScript file from the repository root): its bundle (see
 * bundle.ts), and in tests V8's baseline compiler only for the vault's PGlite (see pglite-wasm.ts).
 */
export async function nodeArgs(entry: string): Promise<string[]> {
  return [...TEST_V8_FLAGS, await bundled(entry)];
}

export interface VaultProcess {
  url: string;
  child: ChildProcess;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * `npm run vault` as a separate process (for the tests that kill it), on a
 * free loopback port, its JSON log lines appended to `<dataDir>/vault.log`.
 * `entry` runs another script that starts a vault the same way (one with
 * job kinds of the tests' own: test/support/job-vault.ts).
 */
export async function startVaultProcess(options: {
  dataDir: string;
  env?: Record<string, string>;
  entry?: string;
  /** How long it may take to listen (default 30 s); it is killed after that. */
  startTimeoutMs?: number;
  /** Node or V8 flags for this process only (benchmarks comparing V8 settings: `--node-flags`). */
  nodeFlags?: string[];
}): Promise<VaultProcess> {
  mkdirSync(options.dataDir, { recursive: true });
  const log = createWriteStream(join(options.dataDir, 'vault.log'), { flags: 'a' });
  // Node itself, not the tsx CLI: signals must reach the vault, not a wrapper process.
  const args = await nodeArgs(options.entry ?? 'server/main.ts');
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', TESSERA_DATA_DIR: options.dataDir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A test process that dies (a crash, a timeout) takes its vaults with it, rather than leaving them running.
  const orphaned = () => child.kill('SIGKILL');
  process.on('exit', orphaned);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', orphaned);
      resolve();
    }),
  );
  child.stderr!.pipe(log, { end: false });

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the vault process did not start listening in time'));
    }, options.startTimeoutMs ?? START_TIMEOUT_MS);
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      buffered += chunk.toString('utf8');
      for (const line of buffered.split('\n').slice(0, -1)) {
        const entry = safeJson(line);
        if (entry?.['msg'] === 'vault listening') {
          clearTimeout(timer);
          resolve(String(entry['url']));
        }
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the vault process exited early (code ${code})`));
    });
  });

  return {
    url,
    child,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      log.end();
    },
  };
}

/**
 * `npm run vault` expected to refuse to start: resolves with its exit code
 * and everything it printed (stdout and stderr) once it has exited, or
 * fails if it is still running after `START_TIMEOUT_MS` (it is then killed).
 */
export async function runVaultToExit(options: { dataDir: string; env?: Record<string, string> }): Promise<{ code: number | null; output: string }> {
  mkdirSync(options.dataDir, { recursive: true });
  const child = spawn(process.execPath, await nodeArgs('server/main.ts'), {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', TESSERA_DATA_DIR: options.dataDir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the vault process was still running after ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    // 'close', not 'exit': by then everything it printed has been read.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function safeJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
