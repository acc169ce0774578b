/**
 * `npm run bench`: every benchmark, one after the other (never together: on
 * a small machine each would be the other's noise), each as a child process
 * with the terminal attached. Fails if any of them fails; after a failure
 * the next one still runs, since they measure different things.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const BENCHMARKS = ['bench/server.ts', 'bench/throughput.ts', 'bench/tokenize-path.ts', 'bench/bulk-update.ts', 'bench/batch.ts', 'bench/network-tokens.ts', 'bench/payment-batch.ts', 'bench/subscriptions.ts', 'bench/widget.ts', 'bench/pay-page.ts'];

let current: ChildProcess | undefined;
let interruptedBy: NodeJS.Signals | undefined;

// The children share our process group, so a Ctrl-C reaches them too; a SIGTERM sent to us alone is passed on.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interruptedBy ??= signal;
    current?.kill(signal);
  });
}

/** Runs one benchmark; resolves with whether it exited 0. */
function run(script: string): Promise<boolean> {
  console.log(`\n━━━━ ${script} ${'━'.repeat(Math.max(4, 70 - script.length))}`);
  return new Promise((resolve) => {
    // Node itself with tsx's loader, not the tsx CLI: a signal we pass on reaches the benchmark, not a wrapper.
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: 'inherit' });
    current = child;
    child.once('error', (error) => {
      current = undefined;
      console.error(`${script}: ${error.message}`);
      resolve(false);
    });
    child.once('exit', (code, signal) => {
      current = undefined;
      if (code !== 0) console.error(`✘ ${script} ${signal ? `was stopped by ${signal}` : `exited with code ${code}`}`);
      resolve(code === 0);
    });
  });
}

const results: Array<{ script: string; ok: boolean; seconds: number }> = [];
for (const script of BENCHMARKS) {
  if (interruptedBy) break;
  const started = performance.now();
  const ok = await run(script);
  results.push({ script, ok, seconds: (performance.now() - started) / 1000 });
}

console.log('\n━━━━ summary ' + '━'.repeat(62));
for (const { script, ok, seconds } of results) console.log(`${ok ? '✔' : '✘'} ${script.padEnd(40)} ${seconds.toFixed(1).padStart(6)} s`);
if (interruptedBy) process.exitCode = 128 + constants.signals[interruptedBy];
else process.exitCode = results.length === BENCHMARKS.length && results.every((result) => result.ok) ? 0 : 1;
