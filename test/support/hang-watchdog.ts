/**
 * A Vitest reporter that turns a hung test file into a fast failure naming
 * the file. It runs in Vitest's own process, outside the workers, so a worker
 * that can no longer run JavaScript at all (a deadlock in native code: the
 * main thread waiting on a lock, 0 % CPU) cannot stop it.
 *
 * Vitest's `testTimeout` and `hookTimeout` are timers inside the worker: they
 * catch a test that awaits forever, but not a worker whose event loop is
 * blocked, nor a file stuck while it loads (a top-level `await`). Two rules
 * cover those, per running file:
 *
 * - its worker's heartbeat (see hang-watchdog-worker.ts, a setup file) is
 *   older than `heartbeatMs`: the event loop has stopped turning;
 * - its current step (loading, a hook, a test) has run for longer than that
 *   step's own time limit plus `graceMs`: Vitest should have failed it by now.
 *
 * Then it prints the file, the step, a Node diagnostic report of the worker
 * (its JavaScript stack and open handles, when the event loop can still run
 * the signal handler) or else the state of each of its threads, and kills the
 * worker; Vitest reports the file as failed and the run goes on.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Reporter, ReportedHookContext, TestCase, TestModule, Vitest } from 'vitest/node';

/** Where the workers find the folder for their heartbeat files and reports. */
export const WATCHDOG_DIR_ENV = 'TESSERA_TEST_WATCHDOG_DIR';

/** What a worker writes about itself (worker-<pid>.json; its modification time is the heartbeat). */
export interface WorkerRecord {
  file: string;
  /** The test running now (with its beforeEach and afterEach hooks), if any. */
  test: string | null;
}

interface Worker {
  pid: number;
  heartbeatAt: number;
  test: string | null;
}

export interface HangWatchdogOptions {
  /** A worker whose heartbeat is older than this is stuck. */
  heartbeatMs?: number;
  /** How long past a step's own time limit before the file counts as stuck. */
  graceMs?: number;
  /** How often the running files are checked. */
  checkEveryMs?: number;
  /** How long to wait for the Node report a stuck worker is asked for. */
  reportWaitMs?: number;
}

interface Step {
  /** What the file is doing, for the failure message. */
  what: string;
  startedAt: number;
  /** Vitest's own limit for this step. */
  limitMs: number;
}

interface RunningFile {
  module: TestModule;
  step: Step;
  handled: boolean;
}

export default class HangWatchdog implements Reporter {
  readonly #heartbeatMs: number;
  readonly #graceMs: number;
  readonly #checkEveryMs: number;
  readonly #reportWaitMs: number;
  readonly #running = new Map<string, RunningFile>();
  /** The step of each test running now, by its id, to return to after its beforeEach and afterEach hooks. */
  readonly #tests = new Map<string, Step>();
  #dir = '';
  #root = process.cwd();
  #testTimeout = 5_000;
  #hookTimeout = 10_000;
  #checking = false;

  constructor(options: HangWatchdogOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 45_000;
    this.#graceMs = options.graceMs ?? 30_000;
    this.#checkEveryMs = options.checkEveryMs ?? 1_000;
    this.#reportWaitMs = options.reportWaitMs ?? 5_000;
  }

  onInit(vitest: Vitest): void {
    this.#root = vitest.config.root;
    this.#testTimeout = vitest.config.testTimeout;
    this.#hookTimeout = vitest.config.hookTimeout;
    const dir = mkdtempSync(join(tmpdir(), 'tessera-vitest-watchdog-'));
    this.#dir = dir;
    // Not at the end of a run: in watch mode the next run's workers use the same folder.
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    // Workers are spawned with this process's environment, read when each file is dispatched.
    process.env[WATCHDOG_DIR_ENV] = dir;
    setInterval(() => void this.#check(), this.#checkEveryMs).unref();
  }

  onTestModuleQueued(module: TestModule): void {
    // Loading the file (imports, top-level code) has no limit of its own in Vitest: give it a hook's.
    this.#running.set(module.moduleId, { module, step: this.#step('loading the file', this.#hookTimeout), handled: false });
  }

  onTestModuleCollected(module: TestModule): void {
    this.#between(module);
  }

  onHookStart(hook: ReportedHookContext): void {
    const owner = hook.entity.type === 'module' ? 'the file' : `"${hook.entity.fullName}"`;
    this.#set(moduleOf(hook), this.#step(`${hook.name} of ${owner}`, this.#hookTimeout));
  }

  onHookEnd(hook: ReportedHookContext): void {
    // A beforeEach or afterEach belongs to its test: the test's own limit holds again, counted from when it started.
    const test = hook.entity.type === 'test' ? this.#tests.get(hook.entity.id) : undefined;
    if (test !== undefined) this.#set(moduleOf(hook), test);
    else this.#between(moduleOf(hook));
  }

  onTestCaseReady(test: TestCase): void {
    const step = this.#step(`the test "${test.fullName}"`, test.options.timeout ?? this.#testTimeout);
    this.#tests.set(test.id, step);
    this.#set(test.module, step);
  }

  onTestCaseResult(test: TestCase): void {
    this.#tests.delete(test.id);
    this.#between(test.module);
  }

  onTestModuleEnd(module: TestModule): void {
    this.#running.delete(module.moduleId);
  }

  #step(what: string, limitMs: number): Step {
    return { what, startedAt: Date.now(), limitMs };
  }

  #set(module: TestModule, step: Step): void {
    const file = this.#running.get(module.moduleId);
    if (file) file.step = step;
  }

  /** Between steps Vitest runs only its own quick bookkeeping. */
  #between(module: TestModule): void {
    this.#set(module, this.#step('between tests', this.#hookTimeout));
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const workers = this.#workers();
      const now = Date.now();
      for (const file of this.#running.values()) {
        if (file.handled) continue;
        const worker = workers.get(file.module.moduleId);
        if (worker !== undefined && !alive(worker.pid)) {
          // Its worker died on its own: Vitest reports that, and the file has nothing left to watch.
          file.handled = true;
          continue;
        }
        const stepMs = now - file.step.startedAt;
        const quietMs = worker === undefined ? 0 : now - worker.heartbeatAt;
        let why: string | undefined;
        if (quietMs > this.#heartbeatMs) {
          why = `its worker's event loop has not turned for ${seconds(quietMs)} (blocked in native code, e.g. a deadlock)`;
        } else if (stepMs > file.step.limitMs + this.#graceMs) {
          why = `its current step has run for ${seconds(stepMs)}, past its own limit of ${seconds(file.step.limitMs)}`;
        }
        if (why === undefined) continue;
        file.handled = true;
        await this.#fail(file, why, worker);
      }
    } finally {
      this.#checking = false;
    }
  }

  /** The workers that registered, by the file each one runs (one file per worker: files are isolated). */
  #workers(): Map<string, Worker> {
    const workers = new Map<string, Worker>();
    for (const name of safeReaddir(this.#dir)) {
      const match = /^worker-(\d+)\.json$/.exec(name);
      if (!match) continue;
      try {
        const path = join(this.#dir, name);
        const { file, test } = JSON.parse(readFileSync(path, 'utf8')) as WorkerRecord;
        workers.set(file, { pid: Number(match[1]), heartbeatAt: statSync(path).mtimeMs, test });
      } catch {
        // Being written, or the worker has just gone.
      }
    }
    return workers;
  }

  async #fail(file: RunningFile, why: string, worker: Worker | undefined): Promise<void> {
    const name = relative(this.#root, file.module.moduleId);
    // The worker's own word is the fresher: Vitest's progress reaches this process in batches.
    const doing = worker?.test ? `the test "${worker.test}"` : file.step.what;
    const lines = [`\n✘ hang watchdog: ${name} is stuck: ${why}.`, `  It was running ${doing}.`];
    const pid = worker?.pid;
    if (pid === undefined) {
      lines.push('  Its worker never registered (no heartbeat file), so it cannot be stopped from here.');
    } else {
      lines.push(...(await diagnose(pid, this.#dir, this.#reportWaitMs)).map((line) => `  ${line}`));
      try {
        process.kill(pid, 'SIGKILL');
        lines.push(`  Stopped its worker (pid ${pid}) so that the file fails and the run goes on.`);
      } catch {
        lines.push(`  Its worker (pid ${pid}) had already exited.`);
      }
    }
    process.stderr.write(`${lines.join('\n')}\n\n`);
  }
}

/**
 * A Node report (SIGUSR2: the worker turned `reportOnSignal` on) needs the
 * worker's event loop; when none comes, the state of each of its threads
 * from /proc says where it is blocked.
 */
async function diagnose(pid: number, dir: string, waitMs: number): Promise<string[]> {
  const before = new Set(safeReaddir(dir));
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return [];
  }
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const report = safeReaddir(dir).find((name) => !before.has(name) && name.startsWith('report.') && name.includes(`.${pid}.`));
    if (report !== undefined) {
      const summary = await summarizeReport(join(dir, report));
      if (summary !== undefined) return summary;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return [`No Node report within ${seconds(waitMs)}: the worker's main thread is not running JavaScript.`, ...threadStates(pid)];
}

interface NodeReport {
  javascriptStack?: { message?: string; stack?: string[] };
  libuv?: { type: string; is_active?: boolean; is_referenced?: boolean; localEndpoint?: unknown; remoteEndpoint?: unknown }[];
}

/** The parts of a report that say where the worker waits. The file is deleted: a report also lists the environment. */
async function summarizeReport(path: string): Promise<string[] | undefined> {
  let report: NodeReport;
  try {
    report = JSON.parse(readFileSync(path, 'utf8')) as NodeReport;
  } catch {
    return undefined; // Still being written.
  }
  rmSync(path, { force: true });
  const stack = (report.javascriptStack?.stack ?? []).slice(0, 20);
  const handles = (report.libuv ?? [])
    .filter((handle) => handle.is_active && handle.is_referenced)
    .map((handle) => [handle.type, handle.remoteEndpoint ?? handle.localEndpoint].filter(Boolean).map((part) => JSON.stringify(part)).join(' '));
  return [
    'Node report of the worker:',
    stack.length === 0 ? '  JavaScript stack: none (the event loop is idle: something awaited never settles)' : '  JavaScript stack:',
    ...stack.map((frame) => `    ${frame.trim()}`),
    `  Active handles (what it waits on): ${handles.length === 0 ? 'none' : ''}`,
    ...handles.map((handle) => `    ${handle}`),
  ];
}

/** Linux only: each thread's name, state and the kernel function it sleeps in. */
function threadStates(pid: number): string[] {
  const tasks = safeReaddir(`/proc/${pid}/task`);
  if (tasks.length === 0) return [];
  return [
    'Its threads (name, state, waiting in):',
    ...tasks.map((tid) => {
      const read = (file: string) => {
        try {
          return readFileSync(`/proc/${pid}/task/${tid}/${file}`, 'utf8').trim();
        } catch {
          return '?';
        }
      };
      const state = /\) (\S)/.exec(read('stat'))?.[1] ?? '?';
      return `  ${tid === String(pid) ? 'main' : tid} ${read('comm')} ${state} ${read('wchan')}`;
    }),
  ];
}

const moduleOf = (hook: ReportedHookContext): TestModule => (hook.entity.type === 'module' ? hook.entity : hook.entity.module);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;
