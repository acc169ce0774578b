/**
 * PGlite is PostgreSQL compiled to 9 MB of WebAssembly, and the suite opens
 * hundreds of them: a thread per test vault, one per demo shop, one per data
 * folder the leak scan reads, one in every vault process. Measured on the
 * 2-core machine, most of what a test vault costs to start was V8 compiling
 * that module, and above all tiering its hot functions up to TurboFan in the
 * background — work a test's few hundred statements never earn back (a vault
 * making 300 tokens and payments used 18 s of CPU with Liftoff alone, 21 s
 * with tier-up). So every process that opens PGlite in the tests runs with
 * `--liftoff-only` (`TEST_V8_FLAGS`: set here, on import, in Vitest's and
 * Playwright's workers, and on the command line of the vault processes tests
 * start). The code is the same; only V8's choice of compiler
 * differs. Benchmarks, which import this support code too, compile it as
 * the vault's own process does (server/storage/pglite-compiler.ts: all of
 * it optimized as it opens), so an in-process benchmark vault measures what
 * `npm run vault` runs.
 *
 * Importing this module also keeps one compiled copy of the module alive for
 * the life of the process: V8 then shares its machine code with every later
 * compile of the same bytes, so the second and later PGlite of a test file
 * start without compiling it again.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import v8 from 'node:v8';
import { optimizePgliteFromTheStart } from '../../server/storage/pglite-compiler.ts';

/**
 * Only inside the test runners (Vitest sets `VITEST` in its workers, Playwright `TEST_WORKER_INDEX`):
 * the benchmarks import this support code too, and must measure PGlite as production runs it.
 */
export const IN_TESTS = process.env['VITEST'] !== undefined || process.env['TEST_WORKER_INDEX'] !== undefined;

/** The V8 flags for a vault process a test starts (none for one a benchmark starts). */
export const TEST_V8_FLAGS: string[] = IN_TESTS ? ['--liftoff-only'] : [];

for (const flag of TEST_V8_FLAGS) v8.setFlagsFromString(flag);
// Set before the module below compiles: V8 reuses that compile's code for every PGlite of this process.
if (!IN_TESTS) optimizePgliteFromTheStart();

const pgliteDist = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));

/** Node's WebAssembly global, which the Node types here declare as types only. */
const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<object> } };

/** Held, never used: while it lives, V8 reuses its code for each PGlite that compiles the same bytes. */
export const PGLITE_MODULE: object = await wasm.compile(readFileSync(join(pgliteDist, 'pglite.wasm')));
