/**
 * `npm test`: everything CI checks, in order, stopping at the first failure.
 *
 *   typecheck → build → chromium, postgres, artifacts (test setup)
 *   → vitest unit + api → playwright e2e → fresh-clone → vitest leaks (alone, last)
 *
 * `fresh-clone` is scripts/fresh-clone.ts: the README's `npm install && npm
 * start` in a clone of the committed HEAD, then Ctrl-C.
 *
 * `npm test -- --only unit,api` runs a subset (names: see STEP_NAMES); the
 * test setup runs whenever a test step does. Children inherit CHROMIUM_PATH,
 * TESSERA_TEST_PG_URL (a throwaway cluster, destroyed at the end) and
 * TESSERA_TEST_ARTIFACTS (where tests put each vault's data and logs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findTestChromium } from './support/chromium.ts';
import { postgresOrSkip } from './support/postgres.ts';

const ROOT = resolve(import.meta.dirname, '..');
const TEST_STEPS = ['unit', 'api', 'e2e', 'leaks'] as const;
const STEP_NAMES = ['typecheck', 'build', ...TEST_STEPS, 'fresh-clone'] as const;
type StepName = (typeof STEP_NAMES)[number];

/**
 * No single command may run away: a hung test file fails within a minute
 * anyway (the hang watchdog), so this is the last safety net, set well above
 * what the slowest step takes on a 2-core machine (the vitest step, about
 * 13 minutes since v2).
 */
const COMMAND_TIMEOUT_MS = 25 * 60_000;
/** How long a timed-out command gets to shut down after SIGTERM. */
const KILL_GRACE_MS = 10_000;

interface Step {
  title: string;
  run(): Promise<void>;
}

interface StepResult {
  title: string;
  ok: boolean;
  seconds: number;
}

/** The signal that interrupted the run: later steps do not start, cleanups still run. */
let interruptedBy: NodeJS.Signals | undefined;
let currentChild: ChildProcess | undefined;

async function main(): Promise<number> {
  let selected: Set<StepName>;
  try {
    selected = parseSelection(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  const cleanups: Step[] = [];
  const results: StepResult[] = [];
  watchSignals();

  try {
    for (const step of planSteps(selected, env, cleanups)) {
      if (interruptedBy) break;
      const result = await runStep(step);
      results.push(result);
      if (!result.ok) break;
    }
  } finally {
    // Even after a failure or an interrupt: a cluster left behind outlives the run.
    for (const cleanup of cleanups.reverse()) results.push(await runStep(cleanup));
  }
  printSummary(results);
  if (interruptedBy) return 128 + constants.signals[interruptedBy];
  return results.every((result) => result.ok) ? 0 : 1;
}

function parseSelection(args: string[]): Set<StepName> {
  const { values } = parseArgs({ args, options: { only: { type: 'string', multiple: true } } });
  if (!values.only) return new Set(STEP_NAMES);

  const names = values.only.flatMap((list) => list.split(',')).map((name) => name.trim());
  const unknown = names.filter((name) => !(STEP_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new TypeError(`Unknown step ${unknown.join(', ')} in --only; the steps are ${STEP_NAMES.join(', ')}.`);
  }
  return new Set(names as StepName[]);
}

function planSteps(selected: Set<StepName>, env: NodeJS.ProcessEnv, cleanups: Step[]): Step[] {
  const steps: Step[] = [];
  if (selected.has('typecheck')) steps.push({ title: 'typecheck', run: () => typecheck(env) });
  if (selected.has('build')) steps.push({ title: 'build (production Vite build)', run: () => command('npm', ['run', 'build'], env) });

  if (TEST_STEPS.some((name) => selected.has(name))) {
    steps.push(
      { title: 'chromium', run: () => useChromium(env) },
      { title: 'postgres', run: () => usePostgres(env, cleanups) },
      { title: 'artifacts', run: () => useArtifactsDir(env) },
    );
  }

  const projects = (['unit', 'api'] as const).filter((name) => selected.has(name));
  if (projects.length > 0) {
    // `api-alone` is the API files that run one at a time (vitest.config.ts).
    const projectArgs = projects.flatMap((name) => (name === 'api' ? ['--project', 'api', '--project', 'api-alone'] : ['--project', name]));
    steps.push({
      title: `vitest ${projects.join(' + ')}`,
      run: async () => {
        for (const name of projects) await requireTestFiles(`test/${name}`, '.test.ts');
        const report = join(env.TESSERA_TEST_ARTIFACTS ?? ROOT, 'vitest-report.json');
        try {
          await command(bin('vitest'), ['run', ...projectArgs], { ...env, TESSERA_TEST_VITEST_REPORT: report });
        } finally {
          await printSlowestFiles(report);
        }
      },
    });
  }
  if (selected.has('e2e')) steps.push({ title: 'playwright e2e', run: () => playwright(env) });
  if (selected.has('fresh-clone')) {
    steps.push({ title: 'fresh clone: npm install && npm start, Ctrl-C', run: () => command(process.execPath, ['--import', 'tsx', 'scripts/fresh-clone.ts'], env) });
  }
  if (selected.has('leaks')) steps.push({ title: 'vitest leaks', run: () => leaks(env) });
  return steps;
}

/** The suite must stay well under 15 minutes: the slowest files are where to look first. */
async function printSlowestFiles(report: string): Promise<void> {
  let files: { name: string; startTime: number; endTime: number }[];
  try {
    files = (JSON.parse(await readFile(report, 'utf8')) as { testResults: typeof files }).testResults;
  } catch {
    return;
  }
  const slowest = files.map((f) => ({ name: relative(ROOT, f.name), seconds: (f.endTime - f.startTime) / 1000 })).sort((a, b) => b.seconds - a.seconds);
  console.log('\nslowest test files:');
  for (const { name, seconds } of slowest.slice(0, 12)) console.log(`${seconds.toFixed(1).padStart(7)} s  ${name}`);
}

async function typecheck(env: NodeJS.ProcessEnv): Promise<void> {
  await command(bin('tsc'), ['-p', 'tsconfig.json'], env);
  // The widget has its own tsconfig (DOM, no Node types), and tsc fails on a project with no inputs.
  if (await hasFiles('widget', '.ts')) {
    await command(bin('tsc'), ['-p', 'widget/tsconfig.json'], env);
  } else {
    console.log('widget/ has no .ts files yet: skipping tsc -p widget/tsconfig.json.');
  }
}

async function useChromium(env: NodeJS.ProcessEnv): Promise<void> {
  env.CHROMIUM_PATH = await findTestChromium();
  console.log(`CHROMIUM_PATH=${env.CHROMIUM_PATH}`);
}

/** Without PostgreSQL the tests that need it skip (postgresOrSkip prints why), except under CI=true. */
async function usePostgres(env: NodeJS.ProcessEnv, cleanups: Step[]): Promise<void> {
  const cluster = await postgresOrSkip({ name: 'npm-test' });
  if (!cluster) return;
  cleanups.push({ title: 'destroy the PostgreSQL cluster', run: () => cluster.destroy() });
  env.TESSERA_TEST_PG_URL = cluster.url;
  console.log(`TESSERA_TEST_PG_URL=${cluster.url}`);
}

async function useArtifactsDir(env: NodeJS.ProcessEnv): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(ROOT, 'test-results', `run-${stamp}`);
  await mkdir(dir, { recursive: true });
  env.TESSERA_TEST_ARTIFACTS = dir;
  console.log(`TESSERA_TEST_ARTIFACTS=${relative(ROOT, dir)}`);
}

async function playwright(env: NodeJS.ProcessEnv): Promise<void> {
  if (!existsSync(join(ROOT, 'playwright.config.ts'))) throw new Error('playwright.config.ts is missing: the end-to-end tests cannot run.');
  await requireTestFiles('test/e2e', '.spec.ts');
  await command(bin('playwright'), ['test'], env);
}

async function leaks(env: NodeJS.ProcessEnv): Promise<void> {
  await requireTestFiles('test/leaks', '.test.ts');
  await command(bin('vitest'), ['run', '--project', 'leaks'], env);
}

/** A test step with nothing to run fails: a moved or renamed folder must not pass as green. */
async function requireTestFiles(dir: string, suffix: string): Promise<void> {
  if (!(await hasFiles(dir, suffix))) throw new Error(`${dir} has no *${suffix} files: this step has nothing to run.`);
}

async function runStep(step: Step): Promise<StepResult> {
  console.log(`\n━━━━ ${step.title} ${'━'.repeat(Math.max(4, 70 - step.title.length))}`);
  const started = performance.now();
  let ok = true;
  try {
    await step.run();
  } catch (error) {
    ok = false;
    console.error(`\n✘ ${step.title}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`${ok ? '✔' : '✘'} ${step.title} (${seconds.toFixed(1)} s)`);
  return { title: step.title, ok, seconds };
}

function printSummary(results: StepResult[]): void {
  console.log('\n━━━━ summary ' + '━'.repeat(62));
  for (const { title, ok, seconds } of results) {
    console.log(`${ok ? '✔' : '✘'} ${title.padEnd(40)} ${seconds.toFixed(1).padStart(6)} s`);
  }
}

/**
 * Runs a program in the repository root with the terminal attached; rejects unless
 * it exits 0. The program gets a process group of its own so that an interrupt, a
 * time-out or its own exit takes down everything it started (servers, workers).
 */
function command(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const name = relative(ROOT, file) || file;
  console.log(`$ ${[name, ...args].join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { cwd: ROOT, env, stdio: 'inherit', detached: true });
    currentChild = child;
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timeLimit = setTimeout(() => {
      timedOut = true;
      signalGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), KILL_GRACE_MS);
    }, COMMAND_TIMEOUT_MS);
    const settle = (): void => {
      clearTimeout(timeLimit);
      clearTimeout(killTimer);
      currentChild = undefined;
    };
    child.once('error', (error) => {
      settle();
      reject(error);
    });
    child.once('exit', (code, signal) => {
      settle();
      signalGroup(child, 'SIGKILL');
      if (code === 0) return resolvePromise();
      const why = timedOut
        ? `was stopped after its time limit of ${COMMAND_TIMEOUT_MS / 60_000} min`
        : signal
          ? `was stopped by ${signal}`
          : `exited with code ${code}`;
      reject(new Error(`${name} ${why}`));
    });
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group has already exited.
  }
}

function bin(name: string): string {
  return join(ROOT, 'node_modules', '.bin', name);
}

async function hasFiles(dir: string, suffix: string): Promise<boolean> {
  const entries = await readdir(join(ROOT, dir), { recursive: true }).catch(() => []);
  return entries.some((entry) => entry.endsWith(suffix));
}

/**
 * Children run in their own process groups, so a Ctrl-C or a SIGTERM from CI
 * reaches only us: pass it on, let the current step fail, and still run the
 * cleanups, which a default signal death would skip.
 */
function watchSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      interruptedBy ??= signal;
      if (currentChild) signalGroup(currentChild, signal);
    });
  }
}

process.exitCode = await main();
