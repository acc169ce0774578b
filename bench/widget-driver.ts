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
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { createMerchant } from '../test/support/api.ts';
import { CARDS, nextYear } from '../test/support/cards.ts';
import { CHROMIUM_ARGS, findChromium } from '../test/support/chromium.ts';
import { newDataDir } from '../test/support/vault.ts';
import { median, percentile, sortedCopy } from './stats.ts';
import { checkoutPage, startBenchVault, warmVault } from './widget-common.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' } } });
const ROUNDS = Number(values.rounds);
/** Uncounted tokenizations per driver first (a new frame's first costs are not what is measured). */
const WARM_UP_RUNS = 2;
const VAULT_WARM_UP = 100;
/** How long a mount may take before it counts as failed. */
const READY_TIMEOUT_MS = 10_000;
/** What Playwright passes to keep a headless page's timers and renderer at full speed, given to the bare browsers too. */
const FOREGROUND_ARGS = ['--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows', '--disable-renderer-backgrounding', '--disable-ipc-flooding-protection'];

interface TokenizeResult {
  ms: number;
  token: string;
}

type Driver = () => Promise<TokenizeResult>;

const expiry = `12${String(nextYear() % 100).padStart(2, '0')}`;
const typed: Array<[field: string, text: string]> = [
  ['number', CARDS.visa.number.replaceAll(' ', '')],
  ['expiry', expiry],
  ['cvc', CARDS.visa.cvc],
];

/** Chromium on a DevTools pipe of our own: fd 3 carries commands in, fd 4 answers out, each message ended by a NUL. */
async function bareChromium(executablePath: string, profile: string, pageUrl: string, key: string, options: { newContext: boolean; network: boolean }) {
  const browser: ChildProcess = spawn(
    executablePath,
    [...CHROMIUM_ARGS, ...FOREGROUND_ARGS, '--headless', '--remote-debugging-pipe', `--user-data-dir=${mkdtempSync(join(profile, 'bare-'))}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] },
  );
  const input = browser.stdio[3] as NodeJS.WritableStream;
  const output = browser.stdio[4] as NodeJS.ReadableStream;
  const waiting = new Map<number, { resolve: (result: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  let buffered = '';
  let nextId = 1;
  output.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
      const message = JSON.parse(buffered.slice(0, end)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      buffered = buffered.slice(end + 1);
      const waiter = message.id === undefined ? undefined : waiting.get(message.id);
      if (waiter === undefined) continue;
      waiting.delete(message.id!);
      if (message.error) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result ?? {});
    }
  });
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      input.write(`${JSON.stringify({ id, method, params, ...(sessionId !== undefined && { sessionId }) })}\0`);
    });

  const context = options.newContext ? ((await send('Target.createBrowserContext')).browserContextId as string) : undefined;
  const { targetId } = await send('Target.createTarget', { url: 'about:blank', ...(context !== undefined && { browserContextId: context }) });
  const sessionId = (await send('Target.attachToTarget', { targetId, flatten: true })).sessionId as string;
  if (options.network) await send('Network.enable', {}, sessionId);
  await send('Page.navigate', { url: pageUrl }, sessionId);
  const evaluate = async (expression: string, contextId?: number) => {
    const answer = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, ...(contextId !== undefined && { contextId }) }, sessionId);
    if (answer['exceptionDetails'] !== undefined) throw new Error(`${expression}: ${JSON.stringify(answer['exceptionDetails']).slice(0, 300)}`);
    return (answer['result'] as { value: unknown }).value;
  };
  for (let tries = 0; (await evaluate('typeof window.bench').catch(() => undefined)) !== 'object'; tries++) {
    if (tries > 100) throw new Error('the merchant page did not load');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const driver: Driver = async () => {
    await evaluate(`bench.mount(${JSON.stringify(key)}, ${READY_TIMEOUT_MS})`);
    const tree = (await send('Page.getFrameTree', {}, sessionId)) as { frameTree: { childFrames: Array<{ frame: { id: string } }> } };
    const frameId = tree.frameTree.childFrames[0]!.frame.id;
    const world = (await send('Page.createIsolatedWorld', { frameId, worldName: 'bench' }, sessionId)).executionContextId as number;
    for (const [field, text] of typed) {
      await evaluate(`document.querySelector('#${field}').focus()`, world);
      for (const char of text) {
        await send('Input.dispatchKeyEvent', { type: 'keyDown', key: char, text: char }, sessionId);
        await send('Input.dispatchKeyEvent', { type: 'keyUp', key: char }, sessionId);
      }
    }
    return (await evaluate('bench.tokenize()')) as TokenizeResult;
  };
  return { driver, close: () => browser.kill('SIGTERM') };
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
  const bare = await bareChromium(executablePath, profile, pageUrl, merchant.publishableKey, { newContext: false, network: false });
  closers.push(bare.close);
  const bareNetwork = await bareChromium(executablePath, profile, pageUrl, merchant.publishableKey, { newContext: true, network: true });
  closers.push(bareNetwork.close);
  const browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS], headless: true });
  closers.push(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  await page.goto(pageUrl);
  const playwright: Driver = async () => {
    await page.evaluate(`bench.mount(${JSON.stringify(merchant.publishableKey)}, ${READY_TIMEOUT_MS})`);
    const fields = page.locator('#card iframe').contentFrame();
    for (const [field, text] of typed) await fields.locator(`#${field}`).pressSequentially(text);
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
