import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WATCHDOG_DIR_ENV } from '../../support/hang-watchdog.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

/** Runs Vitest on the stuck fixtures (test/fixtures/hang), with the watchdog's limits cut to seconds. */
function runFixtures(): Promise<{ code: number | null; output: string }> {
  // This worker's own Vitest variables would make the inner run think it is a worker.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && name !== WATCHDOG_DIR_ENV));
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'node_modules', '.bin', 'vitest'), ['run', '--config', 'test/fixtures/hang/vitest.config.ts', '--color=false'], {
      cwd: ROOT,
      env: { ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('the hang watchdog', () => {
  it('fails a file whose worker is blocked or that never finishes loading, names it and what it was running, and lets the other files run, a slow test within its own limit too', async () => {
    const { code, output } = await runFixtures();
    expect(code, output).toBe(1);
    expect(output).toContain(
      "✘ hang watchdog: test/fixtures/hang/deadlock.fixture.ts is stuck: its worker's event loop has not turned for",
    );
    expect(output).toContain('It was running the test "blocks its main thread forever, as a deadlock in native code does".');
    expect(output).toMatch(/No Node report within \d+ s: the worker's main thread is not running JavaScript\./);
    expect(output).toContain('✘ hang watchdog: test/fixtures/hang/stuck-while-loading.fixture.ts is stuck: its current step has run for');
    expect(output).toContain('It was running loading the file.');
    // Its event loop still turns, so the worker answers with a Node report.
    expect(output).toContain('Node report of the worker:');
    expect(output.match(/Stopped its worker \(pid \d+\) so that the file fails and the run goes on\./g)).toHaveLength(2);
    expect(output).toMatch(/✓ test\/fixtures\/hang\/passes\.fixture\.ts/);
    // A test with a limit of its own keeps it after the beforeEach hook every test has (the watchdog's worker setup).
    expect(output).toMatch(/✓ test\/fixtures\/hang\/own-limit\.fixture\.ts/);
  }, 120_000);
});
