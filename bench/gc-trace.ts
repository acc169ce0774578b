/**
 * For benchmarks comparing V8 heap settings (`--node-flags`): what a
 * vault's `--trace-gc` lines say about a stretch of its log, per isolate —
 * the main thread's and each worker thread's (PGlite's, the decrypt
 * pool's) — and the vault's resident memory.
 */
import { readFileSync } from 'node:fs';

/** `[pid:0xisolate]  1234 ms: Scavenge 5.1 (6.2) -> 4.3 (7.2) MB, 0.85 / 0.00 ms …` (Node 20's V8). */
const GC_LINE = /^\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^,]*?-> [\d.]+ \(([\d.]+)\) MB, ([\d.]+) \//;

interface IsolateGc {
  scavenges: number;
  scavengeMs: number;
  fullGcs: number;
  fullGcMs: number;
  /** The isolate's heap size (MB) at its last collection. */
  heapMb: number;
}

/**
 * Collections per isolate in `text` (a stretch of a log holding `--trace-gc`
 * lines), each isolate's figures divided by `per` (e.g. the tokenizations
 * made meanwhile); isolates in order of their first line. The times are
 * those V8 prints (the main-thread pause; parallel helpers' CPU besides).
 * Empty when there is no trace.
 */
export function summarizeGcTrace(text: string, per: number): string {
  const isolates = new Map<string, IsolateGc>();
  for (const line of text.split('\n')) {
    const match = GC_LINE.exec(line);
    if (match === null) continue;
    const [, isolate, kind, heapMb, ms] = match;
    let entry = isolates.get(isolate!);
    if (entry === undefined) isolates.set(isolate!, (entry = { scavenges: 0, scavengeMs: 0, fullGcs: 0, fullGcMs: 0, heapMb: 0 }));
    if (kind === 'Scavenge') {
      entry.scavenges++;
      entry.scavengeMs += Number(ms);
    } else {
      entry.fullGcs++;
      entry.fullGcMs += Number(ms);
    }
    entry.heapMb = Number(heapMb);
  }
  return [...isolates]
    .map(
      ([isolate, gc]) =>
        `${isolate}: ${(gc.scavenges / per).toFixed(3)} scavenges (${(gc.scavengeMs / per).toFixed(3)} ms), ` +
        `${(gc.fullGcs / per).toFixed(4)} full GCs (${(gc.fullGcMs / per).toFixed(3)} ms), heap ${gc.heapMb} MB`,
    )
    .join('\n    ');
}

/** Resident memory of process `pid` now and at its peak, MB (VmRSS, VmHWM); every thread shares it. */
export function residentMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
