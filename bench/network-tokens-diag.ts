/**
 * BENCH_DIAG=1 for `bench:network-tokens`: per window, the statements the vault
 * sent by kind, the job notifications it received and (PostgreSQL) the CPU of
 * the cluster's processes by role, each per request sent — where a
 * provisioning's cost goes at one rate against another. Wraps the vault's `Db`
 * object in place (every component calls its methods through it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import pg from 'pg';
import type { Db, Queryable } from '../server/storage/db.ts';
import type { ThrowawayPostgres } from '../test/support/postgres.ts';
import { percentile, sortedCopy } from './stats.ts';
import { reapedChildrenMs, statMs } from './cpu.ts';

/** pg_stat_statements and function timings on the throwaway cluster (a restart, before any vault opens). */
export async function withStatementStats(postgres: ThrowawayPostgres): Promise<void> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  await client.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
  await client.query(`alter system set track_functions = 'all'`);
  await client.end();
  await postgres.stop();
  await postgres.start();
}

const KINDS: [string, RegExp][] = [
  ['tokenize', /tessera_create_token/],
  ['claim', /tessera_claim_jobs/],
  ['rows', /tessera_network_token_provision_rows/],
  ['sandbox', /tessera_sandbox_tsp_provision/],
  ['settle', /tessera_settle_network_tokens/],
  ['bench backlog', /select \(select count\(\*\) from jobs/],
  ['poll', /unnest\(\$1::text\[\]\) as k\(kind\)/],
  ['sweep', /lease_expires_at < now\(\)|state = 'done' and finished_at/],
  ['renew', /set lease_expires_at = now\(\)/],
  ['merchant', /from merchants/],
];

function kindOf(sql: string): string {
  for (const [name, re] of KINDS) if (re.test(sql)) return name;
  return `other: ${sql.replace(/\s+/g, ' ').slice(0, 50)}`;
}

/**
 * CPU of the cluster's processes by role (ps title), ms; the pid's column in /proc/pid/cmdline. What processes that
 * exited had used (a backend the pool closed) is the postmaster's reaped children's time, its own role.
 */
function clusterRoles(dataDir: string): Map<string, number> {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim());
  const out = new Map<string, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number(name) !== postmaster && parent !== postmaster) continue;
      const title = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const role = Number(name) === postmaster ? 'postmaster' : /\d+\.\d+\.\d+\.\d+|\[local\]/.test(title) ? `backend ${name}` : title.replace(/^postgres: /, '').trim().slice(0, 30);
      out.set(role, (out.get(role) ?? 0) + statMs(stat));
      if (Number(name) === postmaster) out.set('exited children', reapedChildrenMs(stat));
    } catch {
      // gone
    }
  }
  return out;
}

/** How many items a grouped statement carried: the length of its JSON array parameter, else its rows. */
function itemsOf(params: readonly unknown[] | undefined, rowCount: number): number {
  for (const p of params ?? []) {
    if (typeof p === 'string' && p.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(p);
        if (Array.isArray(parsed)) return parsed.length;
      } catch {
        // not JSON
      }
    }
    if (Array.isArray(p)) return p.length;
  }
  return rowCount;
}

/**
 * A least-squares line through (items, ms on the thread) of one kind of statement: what a statement costs whatever
 * it holds, and what each item adds. Undefined when every statement held as many items (nothing to fit).
 */
function fixedAndPerItem(items: readonly number[], ms: readonly number[]): { fixed: number; perItem: number } | undefined {
  const n = items.length;
  const mx = items.reduce((a, b) => a + b, 0) / n;
  const my = ms.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (items[i]! - mx) ** 2;
    sxy += (items[i]! - mx) * (ms[i]! - my);
  }
  if (sxx === 0) return undefined;
  const perItem = sxy / sxx;
  return { fixed: my - perItem * mx, perItem };
}

export function diagnose(dbs: Db[], dataDir: string | undefined) {
  const counts = new Map<string, number>();
  let notifications = 0;
  const add = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  /** Per kind: each statement's round trip (ms), its time on PGlite's thread (TESSERA_PGLITE_TIMING), its items. */
  const timings = new Map<string, { rtt: number[]; exec: number[]; wait: number[]; items: number[] }>();
  const time = (k: string, rtt: number, result: { execMs?: number; waitMs?: number }, items: number) => {
    let t = timings.get(k);
    if (t === undefined) timings.set(k, (t = { rtt: [], exec: [], wait: [], items: [] }));
    t.rtt.push(rtt);
    if (result.execMs !== undefined) t.exec.push(result.execMs);
    if (result.waitMs !== undefined) t.wait.push(result.waitMs);
    t.items.push(items);
  };
  const wrap = (q: Queryable, v: number): Queryable => {
    const query = q.query.bind(q);
    return Object.assign(q, {
      query: (async (sql: string, params?: readonly unknown[]) => {
        const k = kindOf(sql);
        add(k);
        if (dbs.length > 1 && k === 'claim') add(`claim (vault ${v})`);
        const started = performance.now();
        const result = await query(sql, params);
        time(k.startsWith('other') ? 'other' : k, performance.now() - started, result as { execMs?: number; waitMs?: number }, itemsOf(params, result.rowCount));
        if (k === 'claim' && result.rowCount === 0) add('claim that found nothing');
        return result;
      }) as Queryable['query'],
    });
  };
  dbs.forEach((db, v) => {
    wrap(db, v);
    const transaction = db.transaction.bind(db);
    (db as { transaction: Db['transaction'] }).transaction = (work) => (add('transaction'), transaction((tx) => work(wrap(tx, v))));
  });
  void dbs[0]!.listen('tessera_jobs', () => notifications++);
  // The main thread's event loop is the vault's and this bench's load client's: how late its callbacks ran.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  // Garbage collections on the main thread (their pauses delay the event loop too), and which: scavenges (the young
  // generation) or the old generation's mark-compact and its incremental steps.
  const gcs: number[] = [];
  const gcKinds = new Map<string, number[]>();
  const GC_KINDS: Record<number, string> = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks' };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcs.push(entry.duration);
      const kind = GC_KINDS[((entry as { detail?: { kind?: number } }).detail)?.kind ?? -1] ?? 'other';
      (gcKinds.get(kind) ?? gcKinds.set(kind, []).get(kind)!).push(entry.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  let roles0 = new Map<string, number>();
  let stats: Promise<void> = Promise.resolve();
  const pgStats = async (reset: boolean, requests = 1, condition = '') => {
    const db = dbs[0]!;
    if (db.kind !== 'postgres') return;
    try {
      if (reset) {
        await db.query('create extension if not exists pg_stat_statements');
        await db.query('select pg_stat_statements_reset()');
        await db.query('select pg_stat_reset()');
        return;
      }
      const { rows } = await db.query<{ query: string; calls: string; ms: number }>(
        'select query, calls::text, total_exec_time as ms from pg_stat_statements order by total_exec_time desc limit 12',
      );
      const fns = await db.query<{ funcname: string; calls: string; self: number; total: number }>(
        'select funcname, calls::text, self_time as self, total_time as total from pg_stat_user_functions order by self_time desc limit 10',
      );
      console.log(`    diag ${condition}: PostgreSQL time a request (ms), top-level statements: ${rows.map((r) => `${kindOf(r.query)} ${(r.ms / requests).toFixed(3)} (${(Number(r.calls) / requests).toFixed(3)} calls)`).join(', ')}`);
      console.log(`    diag ${condition}: functions, self time a request (ms): ${fns.rows.map((r) => `${r.funcname} ${(r.self / requests).toFixed(3)}`).join(', ')}`);
    } catch (error) {
      console.log(`    diag: pg_stat_statements: ${(error as Error).message}`);
    }
  };
  return {
    reset() {
      counts.clear();
      timings.clear();
      loopDelay.reset();
      gcs.length = 0;
      gcKinds.clear();
      notifications = 0;
      if (dataDir !== undefined) roles0 = clusterRoles(dataDir);
      stats = pgStats(true);
    },
    async report(condition: string, requests: number) {
      await stats;
      await pgStats(false, requests, condition);
      const per = (n: number) => (n / requests).toFixed(3);
      const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${per(n)}`);
      console.log(`    diag ${condition}: statements a request: ${parts.join(', ')}; notifications ${per(notifications)}`);
      const ms = (ns: number) => (ns / 1e6).toFixed(1);
      console.log(`    diag ${condition}: main thread's event loop delay p50 ${ms(loopDelay.percentile(50))} p99 ${ms(loopDelay.percentile(99))} p99.9 ${ms(loopDelay.percentile(99.9))} max ${ms(loopDelay.max)} ms`);
      const gcSorted = sortedCopy(gcs);
      console.log(
        `    diag ${condition}: main thread's GC: ${gcs.length} pauses, ${gcs.reduce((a, b) => a + b, 0).toFixed(0)} ms in all (${(gcs.reduce((a, b) => a + b, 0) / requests).toFixed(2)} ms a request), p99 ${percentile(gcSorted, 99)?.toFixed(1)} max ${(gcSorted.at(-1) ?? 0).toFixed(1)} ms; ` +
          [...gcKinds]
            .map(([kind, list]) => `${kind} ${list.length}, ${list.reduce((a, b) => a + b, 0).toFixed(0)} ms (p50 ${percentile(sortedCopy(list), 50)?.toFixed(1)})`)
            .join(', '),
      );
      for (const [k, t] of [...timings].sort((a, b) => b[1].exec.reduce((x, y) => x + y, 0) - a[1].exec.reduce((x, y) => x + y, 0))) {
        const exec = sortedCopy(t.exec);
        const rtt = sortedCopy(t.rtt);
        const items = sortedCopy(t.items);
        const sum = exec.reduce((a, b) => a + b, 0);
        const f = (n: number) => n.toFixed(1);
        const fit = t.exec.length === t.items.length ? fixedAndPerItem(t.items, t.exec) : undefined;
        const execPart =
          exec.length === 0
            ? ''
            : `on the thread p50 ${f(percentile(exec, 50))} p90 ${f(percentile(exec, 90))} p99 ${f(percentile(exec, 99))} max ${f(exec.at(-1)!)} ms (${(sum / requests).toFixed(2)} ms a request, ${f(sum / Math.max(1, items.reduce((a, b) => a + b, 0)))} an item` +
              `${fit === undefined ? '' : `; fitted ${fit.fixed.toFixed(2)} ms a statement + ${fit.perItem.toFixed(2)} an item`}), `;
        const waits = exec.length === rtt.length ? sortedCopy(t.rtt.map((r, i) => r - t.exec[i]!)) : [];
        const lock = sortedCopy(t.wait);
        const waitPart =
          (waits.length === 0 ? '' : `, round trip minus thread p50 ${f(percentile(waits, 50))} p99 ${f(percentile(waits, 99))}`) +
          (lock.length === 0 ? '' : `, waited on the thread p50 ${f(percentile(lock, 50))} p90 ${f(percentile(lock, 90))} p99 ${f(percentile(lock, 99))} max ${f(lock.at(-1)!)}`);
        console.log(
          `    diag ${condition}: ${k.padEnd(9)} × ${String(t.rtt.length).padStart(5)}: items p50 ${percentile(items, 50)} p90 ${percentile(items, 90)} max ${items.at(-1)}; ${execPart}round trip p50 ${f(percentile(rtt, 50))} p99 ${f(percentile(rtt, 99))} max ${f(rtt.at(-1)!)}${waitPart}`,
        );
      }
      if (dataDir !== undefined) {
        const now = clusterRoles(dataDir);
        const roles = new Map<string, number>();
        for (const [role, ms] of now) {
          const d = ms - (roles0.get(role) ?? 0);
          const key = role.startsWith('backend ') ? 'backends' : role;
          if (d > 0) roles.set(key, (roles.get(key) ?? 0) + d);
        }
        const backends = [...now.keys()].filter((r) => r.startsWith('backend ')).length;
        console.log(`    diag ${condition}: cluster CPU a request (ms): ${[...roles].sort((a, b) => b[1] - a[1]).map(([r, ms]) => `${r} ${(ms / requests).toFixed(3)}`).join(', ')}; ${backends} backends`);
      }
    },
  };
}
