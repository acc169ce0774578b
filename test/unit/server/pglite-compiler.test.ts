import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'wasm', 'compiler-tier.fixture.ts');

/** Which compiler V8 used for WebAssembly in a process started with `flags` that called optimizePgliteFromTheStart(). */
async function compilerWith(flags: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, '--allow-natives-syntax', '--import', 'tsx', FIXTURE], { cwd: ROOT });
  return stdout.trim();
}

describe("PGlite's WebAssembly in the vault's process (server/storage/pglite-compiler.ts)", () => {
  it('is compiled by the optimizing compiler from the start', async () => {
    expect(await compilerWith([])).toBe('turbofan');
  });

  it("is left to the process's own choice when it was started with a Liftoff flag: the tests' --liftoff-only, an operator's --liftoff", async () => {
    expect(await compilerWith(['--liftoff-only'])).toBe('liftoff');
    expect(await compilerWith(['--liftoff'])).toBe('liftoff');
  });
});
