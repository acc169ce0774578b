/** CPU time, for benchmarks on a shared machine: what an operation costs, where wall rates only say what it got. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** Milliseconds of CPU this process has used, every thread (PGlite's included). */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Milliseconds of CPU a PostgreSQL cluster's processes (the postmaster and its children) have used, those that have
 * exited included (the postmaster's reaped children's time); 0 without a cluster.
 */
export function clusterCpuMs(dataDir: string | undefined): number {
  if (dataDir === undefined) return 0;
  return processTreeCpuMs(Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim()));
}

/** utime + stime, in milliseconds, from a /proc stat line (fields 14 and 15; the command name may hold spaces). */
export function statMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** cutime + cstime, in milliseconds (fields 16 and 17): the CPU of the process's children that exited and were waited for. */
export function reapedChildrenMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SECOND;
}

/**
 * Milliseconds of CPU of process `pid` and its children (a vault's worker processes), every thread counted, and of
 * the children that have exited and been waited for (`pid`'s cutime and cstime): without them the sum fell whenever a
 * child exited — a PostgreSQL backend closed by the pool's idle timeout took all the CPU it had ever used out of the
 * window it exited in (one "off" window of bench:network-tokens read −0.01 ms a tokenization).
 */
export function processTreeCpuMs(pid: number): number {
  return processTree(pid).reduce((ms, process) => ms + statMs(process.stat) + (process.pid === pid ? reapedChildrenMs(process.stat) : 0), 0);
}

/** `pid` and its children (a vault's worker processes, a cluster's backends). */
export const processTreePids = (pid: number): number[] => processTree(pid).map((process) => process.pid);

/** `pid` and its children, each with its `/proc/<pid>/stat` line. */
function processTree(pid: number): { pid: number; stat: string }[] {
  const tree: { pid: number; stat: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number(name) === pid || parent === pid) tree.push({ pid: Number(name), stat });
    } catch {
      // Gone meanwhile.
    }
  }
  return tree;
}

/** Milliseconds of CPU of each thread of `pid`, by thread id (Linux names them all `node`; the main thread's id is the pid). */
export function threadCpuMs(pid: number): Map<string, number> {
  const ms = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ms.set(tid, statMs(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ms;
}

/**
 * Each thread of `pid`'s time on a core and waiting in the run queue for one, in milliseconds, by thread id, from
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds, kept by the scheduler itself): a thread that is ready far more of
 * the time than it runs is the one that waits for the cores, whatever its CPU share says.
 */
export function threadSchedMs(pid: number): Map<string, { running: number; waiting: number }> {
  const ms = new Map<string, { running: number; waiting: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [running, waiting] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      ms.set(tid, { running: running! / 1e6, waiting: waiting! / 1e6 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ms;
}
