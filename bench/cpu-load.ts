/**
 * A process that uses a set share of a core and does nothing else: the
 * control of `bench:network-tokens` (BENCH_CONTROL_CORES). It runs for
 * SLICE_MS at a time and then sleeps for as long as leaves CORES of a core
 * used, until it gets SIGTERM; it then writes the share of a core it used
 * (its CPU over its wall time) to stdout and exits.
 *
 *   CORES=0.3 SLICE_MS=3 node cpu-load.js
 */
const cores = Number(process.env['CORES']);
const sliceMs = Number(process.env['SLICE_MS']);
if (!(cores > 0 && cores < 1) || !(sliceMs > 0)) throw new Error(`CORES must lie between 0 and 1 and SLICE_MS be positive (got ${process.env['CORES']}, ${process.env['SLICE_MS']})`);
const idleMs = (sliceMs * (1 - cores)) / cores;
const started = performance.now();

const slice = () => {
  const from = performance.now();
  while (performance.now() - from < sliceMs) {
    // busy: the point of this process
  }
  setTimeout(slice, idleMs);
};
slice();

process.on('SIGTERM', () => {
  const used = process.cpuUsage();
  process.stdout.write(String((used.user + used.system) / 1000 / (performance.now() - started)));
  process.exit(0);
});
