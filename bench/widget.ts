/**
 * `npm run bench:widget`: the card fields as a shopper's browser sees them.
 * Headless Chromium (the tests' executable and flags), a real vault on
 * `http://127.0.0.1:P1` (in this process, PGlite in a temporary data
 * folder, the production build in dist/) and a merchant page on
 * `http://localhost:P2` that loads `/v1/checkout.js` from the vault, as a
 * merchant's `<script src>` would: two origins, two sites, so the fields are
 * an out-of-process iframe as in production.
 *
 * Measured inside the merchant page with `performance.now()`:
 * - `mount()` → `ready`, cold: a new browser context (empty HTTP and code
 *   caches, no renderer process for the vault's site) and page per run;
 * - `mount()` → `ready`, warm: one page, the card destroyed and a new one
 *   mounted each run;
 * - the same while a second card stays mounted on the page: the vault's
 *   renderer process is then already running (destroying the only card
 *   ends it, and the next mount waits for a new one);
 * - `tokenize()` → resolved, on a warm card the test Visa was typed into.
 * Each run also reads the fields frame's resource timing, to say where the
 * time went. Plus the gzip sizes the widget spec budgets.
 *
 * Bounded by a run count per measure and by a total time cap.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Frame, type Page } from '@playwright/test';
import { createMerchant, type TestMerchant } from '../test/support/api.ts';
import { CARDS, nextYear } from '../test/support/cards.ts';
import { CHROMIUM_ARGS, findChromium } from '../test/support/chromium.ts';
import { startTestVault, type TestVault } from '../test/support/vault.ts';
import { FIELDS_DIR, FIELDS_MANIFEST, FIELDS_READY_BUDGET, LOADER, LOADER_BUDGET, ROOT, fieldsReadyFiles, gzipped } from '../test/support/bundle-sizes.ts';


const RUNS = Number(process.env['BENCH_WIDGET_RUNS'] ?? 25);
const MIN_RUNS = Math.min(20, RUNS);
const TOTAL_SECONDS = Number(process.env['BENCH_WIDGET_SECONDS'] ?? 120);
/** Runs made first and not counted: the vault's and the browser's first-time costs are not what we measure. */
const WARMUP_RUNS = 2;
const READY_TIMEOUT_MS = 15_000;
/** Extra Chromium flags, space-separated, for investigating (e.g. `--disable-site-isolation-trials`); printed with the results. */
const EXTRA_ARGS = (process.env['BENCH_CHROMIUM_ARGS'] ?? '').split(/\s+/).filter(Boolean);

/** Widget spec targets (on localhost) and size budgets. */
const READY_TARGET_MS = 100;
const TOKENIZE_TARGET_MS = 20;

const started = performance.now();
const deadline = started + TOTAL_SECONDS * 1000;
/** Each phase may use time up to its own mark, so the later ones always get their share. */
const coldDeadline = started + TOTAL_SECONDS * 1000 * 0.4;
const sharedDeadline = started + TOTAL_SECONDS * 1000 * 0.5;

// ---------------------------------------------------------------- sizes

interface SizeRow {
  name: string;
  raw: number;
  gzip: number;
  budget: number;
}

/** gzip level 9, as the budget test measures. */
function sizes(): SizeRow[] {
  const measure = (paths: string[]) => ({
    raw: paths.reduce((sum, path) => sum + readFileSync(path).length, 0),
    gzip: paths.reduce((sum, path) => sum + gzipped(path), 0),
  });
  const fieldsFiles = fieldsReadyFiles();
  return [
    { name: 'checkout.js (loader)', ...measure([LOADER]), budget: LOADER_BUDGET },
    {
      name: `fields document JS + CSS (${fieldsFiles.map((file) => file.replace(/^assets\//, '')).join(', ')})`,
      ...measure(fieldsFiles.map((file) => join(FIELDS_DIR, file))),
      budget: FIELDS_READY_BUDGET,
    },
  ];
}

// ---------------------------------------------------------------- the merchant page

/**
 * The merchant's checkout page. Its script times the card API with
 * `performance.now()` and hands back plain numbers; it also notes when the
 * fields' `tessera:hello` reaches the page, to split the ready time.
 */
const merchantPage = (vaultUrl: string) => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Bench shop</title></head>
<body>
<div id="card"></div>
<div id="other-card"></div>
<script src="${vaultUrl}/v1/checkout.js"></script>
<script>
  window.bench = (() => {
    let card;
    let hello;
    addEventListener('message', (event) => {
      if (event.origin === ${JSON.stringify(vaultUrl)} && event.data && event.data.type === 'tessera:hello') hello = performance.now();
    });
    return {
      mount(key, timeoutMs) {
        return new Promise((resolve, reject) => {
          if (card) card.destroy();
          card = Tessera(key).card({ mode: 'payment' });
          const timer = setTimeout(() => reject(new Error('no ready event within ' + timeoutMs + ' ms')), timeoutMs);
          card.on('error', (error) => {
            clearTimeout(timer);
            reject(new Error('error event: ' + error.code + ' ' + error.message));
          });
          hello = undefined;
          const started = performance.now();
          card.on('ready', () => {
            const ready = performance.now();
            clearTimeout(timer);
            resolve({ ms: ready - started, timeOrigin: performance.timeOrigin, started, hello: hello ?? null });
          });
          card.mount('#card');
        });
      },
      /** A second card that stays mounted (and keeps the vault's renderer process alive). */
      mountOther(key) {
        return new Promise((resolve, reject) => {
          const other = Tessera(key).card({ mode: 'payment' });
          other.on('ready', resolve);
          other.on('error', (error) => reject(new Error('error event: ' + error.code + ' ' + error.message)));
          other.mount('#other-card');
        });
      },
      async tokenize() {
        const started = performance.now();
        const value = await card.tokenize();
        const ms = performance.now() - started;
        return { ms, timeOrigin: performance.timeOrigin, started, token: value.token, brand: value.card.brand };
      },
      /** The page's own fetch of checkout.js (cross-origin without Timing-Allow-Origin: start and end only). */
      loaderFetch() {
        const entry = performance.getEntriesByType('resource').find((e) => new URL(e.name).pathname === '/v1/checkout.js');
        return entry ? entry.duration : null;
      },
    };
  })();
</script>
</body>
</html>
`;

interface MountResult {
  ms: number;
  timeOrigin: number;
  started: number;
  hello: number | null;
}

interface TokenizeResult {
  ms: number;
  timeOrigin: number;
  started: number;
  token: string;
  brand: string;
}

/** The merchant site: one page, on `http://localhost:<port>` (the socket is on 127.0.0.1). */
async function startMerchantSite(vaultUrl: string): Promise<{ origin: string; close(): Promise<void> }> {
  const html = merchantPage(vaultUrl);
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/checkout') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    origin: `http://localhost:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------- timing inside the fields frame

interface FrameTiming {
  timeOrigin: number;
  nav: { requestStart: number; responseStart: number; responseEnd: number; domContentLoadedEventStart: number };
  resources: Array<{ path: string; startTime: number; requestStart: number; responseStart: number; responseEnd: number; transferSize: number }>;
}

/** Evaluated in the fields document: its navigation and resource timing (same origin as everything it loads). */
const FRAME_TIMING = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {
    timeOrigin: performance.timeOrigin,
    nav: { requestStart: nav.requestStart, responseStart: nav.responseStart, responseEnd: nav.responseEnd, domContentLoadedEventStart: nav.domContentLoadedEventStart },
    resources: performance.getEntriesByType('resource').map((e) => ({
      path: new URL(e.name).pathname, startTime: e.startTime, requestStart: e.requestStart,
      responseStart: e.responseStart, responseEnd: e.responseEnd, transferSize: e.transferSize,
    })),
  };
})()`;

async function fieldsFrame(page: Page): Promise<Frame> {
  const frame = await (await page.$('#card iframe'))?.contentFrame();
  if (!frame) throw new Error('the card has no iframe');
  return frame;
}

/** Milestones of one mount, in ms after `mount()` was called (the frame's clock mapped through `timeOrigin`). */
type Milestones = Record<string, number>;

const MOUNT_MILESTONES = [
  'fields frame: navigation start',
  'fields document: request sent',
  'fields document: first byte',
  'fields document: received',
  'fields JS: requested',
  'fields CSS: received',
  'fields JS: received',
  'fields DOMContentLoaded (JS evaluated)',
  'hello reaches the page',
  'ready',
] as const;

function mountMilestones(mount: MountResult, frame: FrameTiming): { milestones: Milestones; assetsFromCache: boolean } {
  const offset = frame.timeOrigin - (mount.timeOrigin + mount.started);
  const at = (t: number) => offset + t;
  const asset = (extension: string) => frame.resources.find((r) => r.path.startsWith('/v1/assets/') && r.path.endsWith(extension));
  const css = asset('.css');
  const js = asset('.js');
  const milestones: Milestones = {
    'fields frame: navigation start': at(0),
    'fields document: request sent': at(frame.nav.requestStart),
    'fields document: first byte': at(frame.nav.responseStart),
    'fields document: received': at(frame.nav.responseEnd),
    'fields DOMContentLoaded (JS evaluated)': at(frame.nav.domContentLoadedEventStart),
    ready: mount.ms,
  };
  if (css) milestones['fields CSS: received'] = at(css.responseEnd);
  if (js) {
    milestones['fields JS: requested'] = at(js.startTime);
    milestones['fields JS: received'] = at(js.responseEnd);
  }
  if (mount.hello !== null) milestones['hello reaches the page'] = mount.hello - mount.started;
  return { milestones, assetsFromCache: [css, js].every((r) => r !== undefined && r.transferSize === 0) };
}

/** Where a tokenization's time went: before the POST (message, validation, JWE), the POST, after it (result message). */
function tokenizeParts(result: TokenizeResult, frame: FrameTiming): Milestones | undefined {
  const post = frame.resources.filter((r) => r.path === '/v1/tokens').at(-1);
  if (!post) return undefined;
  const offset = frame.timeOrigin - (result.timeOrigin + result.started);
  return {
    'before the POST (port message, validation, JWE encryption)': offset + post.startTime,
    'POST /v1/tokens: request → first byte (vault)': post.responseStart - post.requestStart,
    'POST /v1/tokens: whole fetch': post.responseEnd - post.startTime,
    'after the response (JSON, result message)': result.ms - (offset + post.responseEnd),
  };
}

// ---------------------------------------------------------------- runs

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const sortedCopy = (values: number[]) => [...values].sort((a, b) => a - b);
const median = (values: number[]) => percentile(sortedCopy(values), 50);

interface Series {
  name: string;
  target: number;
  samples: number[];
  errors: string[];
}

const series = (name: string, target: number): Series => ({ name, target, samples: [], errors: [] });

async function mount(page: Page, merchant: TestMerchant): Promise<MountResult> {
  return (await page.evaluate(`bench.mount(${JSON.stringify(merchant.publishableKey)}, ${READY_TIMEOUT_MS})`)) as MountResult;
}

/** Types the test Visa into the iframe's inputs, as a shopper would. */
async function typeCard(page: Page): Promise<void> {
  const fields = page.locator('#card iframe').contentFrame();
  await fields.locator('#number').pressSequentially(CARDS.visa.number);
  await fields.locator('#expiry').pressSequentially(`12${String(nextYear() % 100).padStart(2, '0')}`);
  await fields.locator('#cvc').pressSequentially(CARDS.visa.cvc);
}

const message = (error: unknown) => (error instanceof Error ? error.message.split('\n')[0]! : String(error));

/** One cold mount: a new context (caches, cookies, processes of its own), a new page, mount, ready. */
async function coldRun(browser: Browser, merchantUrl: string, merchant: TestMerchant) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(merchantUrl);
    const result = await mount(page, merchant);
    const frame = (await (await fieldsFrame(page)).evaluate(FRAME_TIMING)) as FrameTiming;
    const loaderMs = (await page.evaluate('bench.loaderFetch()')) as number | null;
    return { result, ...mountMilestones(result, frame), loaderMs };
  } finally {
    await context.close();
  }
}

async function benchCold(browser: Browser, merchantUrl: string, merchant: TestMerchant) {
  const ready = series('mount() → ready, cold (new context per run)', READY_TARGET_MS);
  const milestones: Milestones[] = [];
  const loader: number[] = [];
  for (let run = 0; run < WARMUP_RUNS + RUNS && performance.now() < coldDeadline; run++) {
    try {
      const sample = await coldRun(browser, merchantUrl, merchant);
      if (run < WARMUP_RUNS) continue;
      ready.samples.push(sample.result.ms);
      milestones.push(sample.milestones);
      if (sample.loaderMs !== null) loader.push(sample.loaderMs);
    } catch (error) {
      ready.errors.push(message(error));
    }
  }
  return { ready, milestones, loader };
}

/** One page, one context, a second card mounted throughout: destroy the card and mount a new one. */
async function benchShared(browser: Browser, merchantUrl: string, merchant: TestMerchant) {
  const ready = series('mount() → ready, warm, a second card on the page (vault renderer already running)', READY_TARGET_MS);
  const milestones: Milestones[] = [];
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(merchantUrl);
    await page.evaluate(`bench.mountOther(${JSON.stringify(merchant.publishableKey)})`);
    for (let run = 0; run < WARMUP_RUNS + RUNS && performance.now() < sharedDeadline; run++) {
      try {
        const mounted = await mount(page, merchant);
        const frame = (await (await fieldsFrame(page)).evaluate(FRAME_TIMING)) as FrameTiming;
        if (run < WARMUP_RUNS) continue;
        ready.samples.push(mounted.ms);
        milestones.push(mountMilestones(mounted, frame).milestones);
      } catch (error) {
        ready.errors.push(message(error));
      }
    }
  } finally {
    await context.close();
  }
  return { ready, milestones };
}

/** One page, one context: destroy the card, mount a new one, type the card, tokenize. */
async function benchWarm(browser: Browser, merchantUrl: string, merchant: TestMerchant) {
  const ready = series('mount() → ready, warm (same page, card destroyed and mounted again)', READY_TARGET_MS);
  const tokenize = series('tokenize() → resolved (warm card, test Visa typed in)', TOKENIZE_TARGET_MS);
  const milestones: Milestones[] = [];
  const parts: Milestones[] = [];
  let fromCache = 0;
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(merchantUrl);
    for (let run = 0; run < WARMUP_RUNS + RUNS && performance.now() < deadline; run++) {
      const counted = run >= WARMUP_RUNS;
      let mounted: MountResult;
      try {
        mounted = await mount(page, merchant);
        const frame = (await (await fieldsFrame(page)).evaluate(FRAME_TIMING)) as FrameTiming;
        if (counted) {
          const sample = mountMilestones(mounted, frame);
          ready.samples.push(mounted.ms);
          milestones.push(sample.milestones);
          if (sample.assetsFromCache) fromCache++;
        }
      } catch (error) {
        ready.errors.push(message(error));
        continue;
      }
      try {
        await typeCard(page);
        const result = (await page.evaluate('bench.tokenize()')) as TokenizeResult;
        if (!/^tok_/.test(result.token) || result.brand !== CARDS.visa.brand) throw new Error(`unexpected result ${JSON.stringify(result)}`);
        const frame = (await (await fieldsFrame(page)).evaluate(FRAME_TIMING)) as FrameTiming;
        if (counted) {
          tokenize.samples.push(result.ms);
          const split = tokenizeParts(result, frame);
          if (split) parts.push(split);
        }
      } catch (error) {
        tokenize.errors.push(message(error));
      }
    }
  } finally {
    await context.close();
  }
  return { ready, tokenize, milestones, parts, fromCache };
}

// ---------------------------------------------------------------- report

const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1) : '—');
const verdict = (ms: number, target: number) => (ms <= target ? 'pass' : 'MISS');

function seriesRow(s: Series): string {
  const sorted = sortedCopy(s.samples);
  const p50 = percentile(sorted, 50);
  const p95 = percentile(sorted, 95);
  return (
    `| ${s.name} | ${s.samples.length} | ${fmt(p50)} (${verdict(p50, s.target)}) | ${fmt(p95)} (${verdict(p95, s.target)}) | ` +
    `≤ ${s.target} | ${s.errors.length} |`
  );
}

function milestoneRows(samples: Milestones[], names: readonly string[]): string[] {
  return names
    .map((name) => ({ name, values: samples.map((sample) => sample[name]).filter((v): v is number => v !== undefined) }))
    .filter(({ values }) => values.length > 0)
    .map(({ name, values }) => `| ${name} | ${fmt(median(values))} | ${fmt(percentile(sortedCopy(values), 95))} |`);
}

/** Durations the vault logged for each `METHOD path` among `paths` (one JSON line per request). */
function accessLogTimes(logFile: string, paths: string[]): Map<string, number[]> {
  const times = new Map<string, number[]>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; method?: string; path?: string; ms?: number };
    if (entry.msg !== 'request' || entry.ms === undefined || !paths.includes(entry.path ?? '')) continue;
    const key = `${entry.method} ${entry.path}`;
    times.set(key, [...(times.get(key) ?? []), entry.ms]);
  }
  return times;
}

// ---------------------------------------------------------------- main

function ensureBuild(): void {
  if (existsSync(LOADER) && existsSync(FIELDS_MANIFEST)) return;
  console.log('dist/ has no widget build: running `npm run build`.');
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('`npm run build` failed');
}

// A hung browser or server must not hold the run past its cap (plus time to start and stop).
const watchdog = setTimeout(() => {
  console.error(`bench:widget: still running ${TOTAL_SECONDS + 60} s after it started; giving up.`);
  process.exit(1);
}, (TOTAL_SECONDS + 60) * 1000);
watchdog.unref();

ensureBuild();
const executablePath = await findChromium();
let vault: TestVault | undefined;
let site: Awaited<ReturnType<typeof startMerchantSite>> | undefined;
let browser: Browser | undefined;
let failed = false;
try {
  vault = await startTestVault({ name: 'bench-widget' });
  if (vault.vault.deps.widget.checkout === undefined || vault.vault.deps.widget.fields === undefined) {
    throw new Error('the vault found no widget build in dist/');
  }
  site = await startMerchantSite(vault.url);
  const merchant = await createMerchant(vault, { name: 'Bench Shop', allowedOrigins: [site.origin] });
  browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS, ...EXTRA_ARGS], headless: true });
  const merchantUrl = `${site.origin}/checkout`;
  console.log(`Chromium ${browser.version()} (${executablePath}), Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}`);
  console.log(`vault ${vault.url} (in process, PGlite), merchant page ${merchantUrl}; ${RUNS} runs per measure after ${WARMUP_RUNS} warm-up runs, cap ${TOTAL_SECONDS} s`);

  const cold = await benchCold(browser, merchantUrl, merchant);
  console.log(`cold mounts done: ${cold.ready.samples.length} runs, ${cold.ready.errors.length} errors`);
  const shared = await benchShared(browser, merchantUrl, merchant);
  console.log(`warm mounts beside a second card done: ${shared.ready.samples.length} runs, ${shared.ready.errors.length} errors`);
  const warm = await benchWarm(browser, merchantUrl, merchant);
  console.log(`warm mounts and tokenizations done: ${warm.ready.samples.length} / ${warm.tokenize.samples.length} runs`);

  const all = [cold.ready, warm.ready, shared.ready, warm.tokenize];
  console.log(`\nMachine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; Chromium ${browser.version()}`);
  if (EXTRA_ARGS.length > 0) console.log(`NOTE: extra Chromium flags from BENCH_CHROMIUM_ARGS: ${EXTRA_ARGS.join(' ')}`);
  console.log(`Measured in the merchant page with performance.now(); ${RUNS} runs per measure after ${WARMUP_RUNS} uncounted ones.\n`);
  console.log('| measure | runs | median ms | p95 ms | target ms | errors |');
  console.log('|---|---|---|---|---|---|');
  for (const s of all) console.log(seriesRow(s));

  console.log('\n| size (gzip -9) | raw bytes | gzip bytes | budget | |');
  console.log('|---|---|---|---|---|');
  for (const row of sizes()) {
    console.log(`| ${row.name} | ${row.raw} | ${row.gzip} | ≤ ${row.budget} | ${row.gzip <= row.budget ? 'pass' : 'MISS'} |`);
  }

  console.log('\nCold mount, milestones (ms after mount(), median and p95 over the runs):\n');
  console.log('| milestone | median | p95 |');
  console.log('|---|---|---|');
  for (const row of milestoneRows(cold.milestones, MOUNT_MILESTONES)) console.log(row);
  if (cold.loader.length > 0) {
    console.log(`\n(Before mount(), the page's own fetch of checkout.js took ${fmt(median(cold.loader))} ms median, cold.)`);
  }

  console.log(`\nWarm mount, milestones (fields JS and CSS from the HTTP cache in ${warm.fromCache} of ${warm.milestones.length} runs):\n`);
  console.log('| milestone | median | p95 |');
  console.log('|---|---|---|');
  for (const row of milestoneRows(warm.milestones, MOUNT_MILESTONES)) console.log(row);

  console.log('\nWarm mount beside a second card, milestones:\n');
  console.log('| milestone | median | p95 |');
  console.log('|---|---|---|');
  for (const row of milestoneRows(shared.milestones, MOUNT_MILESTONES)) console.log(row);

  console.log('\nTokenize, where the time goes (ms, median and p95):\n');
  console.log('| part | median | p95 |');
  console.log('|---|---|---|');
  for (const row of milestoneRows(warm.parts, Object.keys(warm.parts[0] ?? {}))) console.log(row);

  const vaultTimes = accessLogTimes(vault.logFile, ['/v1/fields', '/v1/tokens']);
  console.log("\nThe vault's own time per request (its access log, `ms`, all requests of the run):\n");
  console.log('| request | count | median | p95 |');
  console.log('|---|---|---|---|');
  for (const [path, values] of vaultTimes) {
    console.log(`| ${path} | ${values.length} | ${fmt(median(values))} | ${fmt(percentile(sortedCopy(values), 95))} |`);
  }

  for (const s of all) {
    for (const error of new Set(s.errors)) console.error(`${s.name}: ${error}`);
    if (s.errors.length > 0) failed = true;
    if (s.samples.length < MIN_RUNS) {
      console.error(`${s.name}: only ${s.samples.length} runs within ${TOTAL_SECONDS} s (at least ${MIN_RUNS} wanted)`);
      failed = true;
    }
  }
} catch (error) {
  console.error(`bench:widget failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  failed = true;
} finally {
  await browser?.close().catch(() => undefined);
  await site?.close();
  await vault?.close();
  // The data folder holds a development master key and tokens of the test card: do not leave it behind.
  if (vault) rmSync(vault.dataDir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
