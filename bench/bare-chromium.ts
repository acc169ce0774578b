/**
 * Chromium driven over a bare DevTools pipe of our own (`--remote-debugging-pipe`):
 * a handful of commands (open a page, evaluate, key events), no domain
 * enabled unless asked, so the browser reports nothing per request. It is as
 * near to a shopper's browser as a driven one gets; Playwright, by contrast,
 * always has the Network domain on and handles every event of every frame
 * in its own process on the same cores (docs/benchmarks.md, "Where
 * `tokenize()`'s last milliseconds go": 5.5–9.5 ms of `tokenize()` under
 * Playwright on this 2-core machine).
 *
 * Used by `bench:widget` (its `tokenize()` target line) and
 * `bench:widget-driver` (the drivers compared).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_ARGS } from '../test/support/chromium.ts';

/** What Playwright passes to keep a headless page's timers and renderer at full speed, given to the bare browser too. */
const FOREGROUND_ARGS = ['--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows', '--disable-renderer-backgrounding', '--disable-ipc-flooding-protection'];

export interface BarePage {
  /** `expression` evaluated in the page (promises awaited, the value returned). */
  evaluate(expression: string): Promise<unknown>;
  /**
   * Types each entry's `text` into the element `#field` of the card fields'
   * frame (found once, by its path): focuses it there, then sends key
   * events, which the browser routes to the focused frame.
   */
  typeInFields(entries: ReadonlyArray<readonly [field: string, text: string]>): Promise<void>;
}

export interface BareChromium {
  /** A new tab on `url`, once `ready` (an expression) is true in it. */
  open(url: string, ready: string): Promise<BarePage>;
  /** Ends the browser; resolves once it has exited (its profile can be removed then). */
  close(): Promise<void>;
}

interface Attached {
  sessionId: string;
  targetInfo: { type: string; url: string };
}

/** Starts Chromium with a profile in `profileParent`; `network` enables the Network domain on each page (as Playwright does), `newContext` opens pages in a new browser context. */
export async function bareChromium(executablePath: string, profileParent: string, options: { newContext?: boolean; network?: boolean } = {}): Promise<BareChromium> {
  const browser: ChildProcess = spawn(
    executablePath,
    [...CHROMIUM_ARGS, ...FOREGROUND_ARGS, '--headless', '--remote-debugging-pipe', `--user-data-dir=${mkdtempSync(join(profileParent, 'bare-'))}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] },
  );
  // fd 3 carries commands in, fd 4 answers and events out, each message ended by a NUL.
  const input = browser.stdio[3] as NodeJS.WritableStream;
  const output = browser.stdio[4] as NodeJS.ReadableStream;
  const waiting = new Map<number, { resolve: (result: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  /** Frame targets (out-of-process iframes) attached to, newest last. */
  const frames: Attached[] = [];
  let buffered = '';
  let nextId = 1;
  output.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
      const message = JSON.parse(buffered.slice(0, end)) as {
        id?: number;
        method?: string;
        params?: Record<string, unknown>;
        result?: Record<string, unknown>;
        error?: { message: string };
      };
      buffered = buffered.slice(end + 1);
      if (message.method === 'Target.attachedToTarget') {
        const attached = message.params as unknown as Attached;
        if (attached.targetInfo.type === 'iframe') frames.push(attached);
      } else if (message.method === 'Target.detachedFromTarget') {
        const index = frames.findIndex((frame) => frame.sessionId === message.params?.['sessionId']);
        if (index >= 0) frames.splice(index, 1);
      }
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
  const evaluateIn = async (sessionId: string, expression: string, contextId?: number) => {
    const answer = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, ...(contextId !== undefined && { contextId }) }, sessionId);
    if (answer['exceptionDetails'] !== undefined) throw new Error(`${expression}: ${JSON.stringify(answer['exceptionDetails']).slice(0, 300)}`);
    return (answer['result'] as { value: unknown }).value;
  };

  return {
    async open(url, ready) {
      const context = options.newContext ? ((await send('Target.createBrowserContext')).browserContextId as string) : undefined;
      const { targetId } = await send('Target.createTarget', { url: 'about:blank', ...(context !== undefined && { browserContextId: context }) });
      const page = (await send('Target.attachToTarget', { targetId, flatten: true })).sessionId as string;
      // Cross-site frames are targets of their own: attach to each as it starts, without holding it.
      await send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, page);
      if (options.network) await send('Network.enable', {}, page);
      await send('Page.navigate', { url }, page);
      for (let tries = 0; (await evaluateIn(page, ready).catch(() => false)) !== true; tries++) {
        if (tries > 100) throw new Error(`${url} did not become ready (${ready})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      /** Where to evaluate in the fields' frame: its own target (cross-site), else an isolated world of it in the page's. */
      const fieldsFrame = async (): Promise<{ sessionId: string; contextId?: number }> => {
        for (const frame of [...frames].reverse()) {
          const path = await evaluateIn(frame.sessionId, 'location.pathname').catch(() => undefined);
          if (path === '/v1/fields') return { sessionId: frame.sessionId };
        }
        const tree = (await send('Page.getFrameTree', {}, page)) as { frameTree: { childFrames?: Array<{ frame: { id: string; url: string } }> } };
        const child = tree.frameTree.childFrames?.find(({ frame }) => new URL(frame.url).pathname === '/v1/fields');
        if (child === undefined) throw new Error('the page has no card fields frame');
        const world = (await send('Page.createIsolatedWorld', { frameId: child.frame.id, worldName: 'bench' }, page)).executionContextId as number;
        return { sessionId: page, contextId: world };
      };
      return {
        evaluate: (expression) => evaluateIn(page, expression),
        async typeInFields(entries) {
          const frame = await fieldsFrame();
          for (const [field, text] of entries) {
            await evaluateIn(frame.sessionId, `document.querySelector(${JSON.stringify(`#${field}`)}).focus()`, frame.contextId);
            for (const char of text) {
              await send('Input.dispatchKeyEvent', { type: 'keyDown', key: char, text: char }, page);
              await send('Input.dispatchKeyEvent', { type: 'keyUp', key: char }, page);
            }
          }
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (browser.exitCode !== null || browser.signalCode !== null) return resolve();
        browser.once('exit', () => resolve());
        // Asked to close, it ends its other processes and lets go of its profile before it exits.
        send('Browser.close').catch(() => browser.kill('SIGTERM'));
        setTimeout(() => browser.kill('SIGKILL'), 5_000).unref();
      }),
  };
}
