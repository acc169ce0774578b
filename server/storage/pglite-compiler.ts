import v8 from 'node:v8';

/**
 * PGlite is PostgreSQL compiled to 9 MB of WebAssembly. By default V8
 * compiles it with its baseline compiler (Liftoff) and compiles again with
 * its optimizing one (TurboFan), in the background, each function it finds
 * hot. A vault process runs for hours and its statements touch many
 * functions that a tokenization calls once or twice: after hundreds of
 * tokenizations a lone one still ran part of PostgreSQL as baseline code.
 * So the vault's own process has V8 compile all of it with TurboFan when the
 * database opens: its start takes ~1.5–3 s longer, and from its first request
 * on every statement runs optimized code (a lone tokenization's statement
 * 1.9 → 1.6 ms on PGlite's thread, the vault's answer 0.8–1.4 ms sooner;
 * docs/decisions.md, "PGlite optimized from the start").
 *
 * The flag is V8's, for the whole process, and takes effect for modules
 * compiled after it is set: call this before PGlite opens. A process started
 * with a Liftoff flag of its own (the tests' `--liftoff-only`, or an
 * operator's) keeps its choice. The CLI's short commands do not call it.
 */
export function optimizePgliteFromTheStart(): void {
  if (process.execArgv.some((flag) => flag.includes('liftoff'))) return;
  v8.setFlagsFromString('--no-liftoff');
}
