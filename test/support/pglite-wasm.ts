/**
 * PGlite is PostgreSQL compiled to 9 MB of WebAssembly, and the suite opens
 * hundreds of them: a thread per test vault, one per demo shop, one per data
 * folder the leak scan reads, one in every vault process. Measured on the
 * 2-core machine, most of what a test vault costs to start was V8 compiling
 * that module, and above all tiering its hot functions up to TurboFan in the
 * background — work a test's few hundred statements never earn back (a vault
 * making 300 tokens and payments used 18 s of CPU with Liftoff alone, 21 s
 * with tier-up). So every process that opens PGlite in the tests runs with
 * `--liftoff-only` (`LIFTOFF_ONLY`: on the command line of the Vitest workers
 * and of vault processes, set here for Playwright's workers, which take no
 * V8 flags). The code is the same; only V8's choice of compiler differs.
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

export const LIFTOFF_ONLY = '--liftoff-only';

v8.setFlagsFromString(LIFTOFF_ONLY);

const pgliteDist = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));

/** Node's WebAssembly global, which the Node types here declare as types only. */
const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<object> } };

/** Held, never used: while it lives, V8 reuses its code for each PGlite that compiles the same bytes. */
export const PGLITE_MODULE: object = await wasm.compile(readFileSync(join(pgliteDist, 'pglite.wasm')));
