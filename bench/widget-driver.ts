/**
 * `npm run bench:widget-driver`: what the benchmark's driver costs
 * `tokenize()`. The same merchant page, card fields and vault (PGlite,
 * warmed with 100 tokenizations, as `bench:widget` runs it), with
 * `tokenize()` timed inside the page, in Chromium driven three ways, one
 * tokenization each in turn so that the machine's load falls on all alike:
 *
 * - over a bare DevTools pipe (`--remote-debugging-pipe`): our own few
 *   commands (navigate, evaluate, key events), no domain enabled, so the
 *   browser reports nothing per request — as near to a shopper's browser as
 *   a driven one gets;
 * - the same, in a new browser context (as Playwright's `newContext()`) with
 *   the Network domain enabled (as Playwright always has it);
 * - Playwright, as `bench:widget` drives it.
 *
 * Why it exists (2026-12-02, docs/benchmarks.md, "Widget"): a trace of
 * `tokenize()` under Playwright shows DevTools work in the network service
 * and the browser process around the token request.
 *
 *   npm run bench:widget-driver [-- --rounds 30]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { createMerchant } from '../test/support/api.ts';
import { CHROMIUM_ARGS, findChromium } from '../test/support/chromium.ts';
import { bareChromium } from './bare-chromium.ts';
import { newDataDir } from '../test/support/vault.ts';
import { median, percentile, sortedCopy } from './stats.ts';
import { TYPED_CARD, checkoutPage, startBenchVault, warmVault } from './widget-common.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' } } });
const ROUNDS = Number(values.rounds);
/** Uncounted tokenizations per driver first (a new frame's first costs are not what is measured). */
const WARM_UP_RUNS = 2;
const VAULT_WARM_UP = 100;
/** How long a mount may take before it counts as failed. */
const READY_TIMEOUT_MS = 10_000;
interface TokenizeResult {
  ms: number;
  token: string;
}

type Driver = () => Promise<TokenizeResult>;


/** One tokenization driven over a bare DevTools pipe (bare-chromium.ts): mount, type the test card, tokenize. */
async function bareDriver(executablePath: string, profile: string, pageUrl: string, key: string, options: { newContext: boolean; network: boolean }) {
  const browser = await bareChromium(executablePath, profile, options);
  const page = await browser.open(pageUrl, "typeof window.bench === 'object'");
  const driver: Driver = async () => {
    await page.evaluate(`bench.mount(${JSON.stringify(key)}, ${READY_TIMEOUT_MS})`);
    await page.typeInFields(TYPED_CARD);
    return (await page.evaluate('bench.tokenize()')) as TokenizeResult;
  };
  return { driver, close: browser.close };
}

const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const dataDir = await newDataDir('pglite', 'bench-widget-driver');
const profile = mkdtempSync(join(tmpdir(), 'tessera-widget-driver-'));
const adminKey = `admin_${randomBytes(18).toString('hex')}`;
const closers: Array<() => unknown> = [];
try {
  const vault = await startBenchVault(dataDir, adminKey);
  closers.push(() => vault.kill('SIGTERM'));
  const site = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/checkout') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(checkoutPage(vault.url));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', () => resolve()));
  closers.push(() => site.close());
  // The merchant site on localhost, the vault's site: over the bare pipe the fields frame is found in the page's frame
  // tree, which holds it only in the page's process (cross-site it is another target). bench:widget is cross-site; for
  // tokenize() the two measured alike (docs/benchmarks.md, "Where tokenize()'s last milliseconds go").
  const pageUrl = `http://localhost:${(site.address() as AddressInfo).port}/checkout`;
  const merchant = await createMerchant({ url: vault.url, adminKey }, { name: 'Bench Shop', allowedOrigins: [new URL(pageUrl).origin] });
  console.log(`load average at the start: ${loadAverage()}`);
  await warmVault(vault.url, merchant, VAULT_WARM_UP);

  const executablePath = await findChromium();
  const bare = await bareDriver(executablePath, profile, pageUrl, merchant.publishableKey, { newContext: false, network: false });
  closers.push(bare.close);
  const bareNetwork = await bareDriver(executablePath, profile, pageUrl, merchant.publishableKey, { newContext: true, network: true });
  closers.push(bareNetwork.close);
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS], headless: true });
  closers.push(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  await page.goto(pageUrl);
  const playwright: Driver = async () => {
    await page.evaluate(`bench.mount(${JSON.stringify(merchant.publishableKey)}, ${READY_TIMEOUT_MS})`);
    const fields = page.locator('#card iframe').contentFrame();
    for (const [field, text] of TYPED_CARD) await fields.locator(`#${field}`).pressSequentially(text);
    return (await page.evaluate('bench.tokenize()')) as TokenizeResult;
  };

  const drivers: Array<[string, Driver]> = [
    ['bare DevTools pipe', bare.driver],
    ['bare DevTools pipe, new browser context, Network domain on', bareNetwork.driver],
    ['Playwright (as bench:widget)', playwright],
  ];
  const samples = new Map<string, number[]>(drivers.map(([name]) => [name, []]));
  for (let round = 0; round < WARM_UP_RUNS + ROUNDS; round++) {
    for (const [name, driver] of drivers) {
      const result = await driver();
      if (!/^tok_/.test(result.token)) throw new Error(`${name}: no token (${JSON.stringify(result)})`);
      if (round >= WARM_UP_RUNS) samples.get(name)!.push(result.ms);
    }
  }

  console.log(`\ntokenize() → resolved, timed in the page, ${ROUNDS} per driver taken in turn; vault warmed with ${VAULT_WARM_UP} (PGlite).\n`);
  console.log('| driver | median ms | p95 ms | median of each third of the run |');
  console.log('|---|---|---|---|');
  for (const [name, list] of samples) {
    const thirds = [0, 1, 2].map((k) => median(list.slice(Math.floor((k * list.length) / 3), Math.floor(((k + 1) * list.length) / 3))).toFixed(1));
    console.log(`| ${name} | ${median(list).toFixed(1)} | ${percentile(sortedCopy(list), 95).toFixed(1)} | ${thirds.join(' / ')} |`);
  }
  console.log(`\nload average at the end: ${loadAverage()}`);
} finally {
  for (const close of closers.reverse()) await close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}
