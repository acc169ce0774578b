/**
 * The test shop page (pages/shop.html + harness.js) as the tests drive it:
 * mount cards, read what the card API handed the page, tokenize.
 */
import { expect, type Frame, type FrameLocator, type Page } from '@playwright/test';
import type { CardOptions, CvcResult, TokenResult } from '../../../widget/shared/messages.ts';

export interface CardEventRecord {
  type: 'ready' | 'change' | 'focus' | 'blur' | 'resize' | 'submit' | 'error';
  detail: any;
}

export interface PlainTesseraError {
  name: string;
  code: string;
  type: string;
  message: string;
  param?: string;
  isError: boolean;
}

/**
 * What `card.tokenize()` settled with, and after how many milliseconds. The
 * value is a `TokenResult`, or in cvc mode a `CvcResult` (then only `cvc`).
 */
export type TokenizeOutcome =
  | { ok: true; value: TokenResult & Partial<CvcResult>; ms: number }
  | { ok: false; error: PlainTesseraError; ms: number };

export interface Placement {
  /** Mount inside an open shadow root on the slot. */
  shadow?: boolean;
  /** Mount by selector (`#name`) instead of by element. */
  bySelector?: boolean;
}

/** What harness.js puts on `window`; the callbacks below run in the page and reach it through this type. */
interface Harness {
  mount(name: string, key: string, options: CardOptions, placement: Placement): void;
  update(name: string, options: CardOptions): void;
  destroy(name: string): void;
  clear(name: string): void;
  events(name: string, type?: string): CardEventRecord[];
  tokenize(name: string): Promise<TokenizeOutcome>;
  frame(name: string, src: string): void;
  init(name: string, vaultOrigin: string, options: CardOptions): void;
  received(name: string): any[];
  readFrameDocument(name: string): { contentDocument: string; viaWindow: string };
  channelOf(name: string): string;
  placement(name: string): { inLightDom: boolean; inShadow: boolean };
  overflow(selector: string): { scrollWidth: number; clientWidth: number };
}
type HarnessWindow = { harness: Harness };

/** How long a card may take from `mount()` to `ready`. */
export const READY_TIMEOUT_MS = 15_000;

export class ShopPage {
  constructor(
    readonly page: Page,
    /** The vault origin this page loaded checkout.js from. */
    readonly vaultUrl: string,
    readonly publishableKey: string,
  ) {}

  async mount(name: string, options: CardOptions = {}, placement: Placement = {}, key = this.publishableKey): Promise<void> {
    await this.page.evaluate(
      ([n, k, o, p]) => (globalThis as unknown as HarnessWindow).harness.mount(n, k, o, p),
      [name, key, options, placement] as const,
    );
  }

  /** Mounts a card and waits for its `ready` event. */
  async mountReady(name: string, options: CardOptions = {}, placement: Placement = {}): Promise<FrameLocator> {
    await this.mount(name, options, placement);
    await this.ready(name);
    return this.fields(name);
  }

  async ready(name: string): Promise<void> {
    await expect
      .poll(() => this.events(name, 'ready').then((events) => events.length), {
        message: `card "${name}" emits ready`,
        timeout: READY_TIMEOUT_MS,
      })
      .toBeGreaterThan(0);
  }

  async destroy(name: string): Promise<void> {
    await this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.destroy(n), name);
  }

  async clear(name: string): Promise<void> {
    await this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.clear(n), name);
  }

  /** `card.update(options)` on the page. */
  async update(name: string, options: CardOptions): Promise<void> {
    await this.page.evaluate(([n, o]) => (globalThis as unknown as HarnessWindow).harness.update(n, o), [name, options] as const);
  }

  /** The card's iframe, for locators inside the fields document. */
  fields(name: string): FrameLocator {
    return this.page.locator(`#${name} iframe`).contentFrame();
  }

  /** The card's iframe as a Playwright Frame (to evaluate in it or read its URL). */
  async frame(name: string): Promise<Frame> {
    const frame = await (await this.page.locator(`#${name} iframe, iframe#${name}`).elementHandle())?.contentFrame();
    if (!frame) throw new Error(`no frame for "${name}"`);
    return frame;
  }

  events(name: string, type?: CardEventRecord['type']): Promise<CardEventRecord[]> {
    return this.page.evaluate(([n, t]) => (globalThis as unknown as HarnessWindow).harness.events(n, t), [name, type] as const);
  }

  tokenize(name: string): Promise<TokenizeOutcome> {
    return this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.tokenize(n), name);
  }

  addFrame(name: string, src: string): Promise<void> {
    return this.page.evaluate(([n, s]) => (globalThis as unknown as HarnessWindow).harness.frame(n, s), [name, src] as const);
  }

  initFrame(name: string, options: CardOptions = {}): Promise<void> {
    return this.page.evaluate(
      ([n, v, o]) => (globalThis as unknown as HarnessWindow).harness.init(n, v, o),
      [name, this.vaultUrl, options] as const,
    );
  }

  receivedOnPort(name: string): Promise<any[]> {
    return this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.received(n), name);
  }

  readFrameDocument(name: string): Promise<{ contentDocument: string; viaWindow: string }> {
    return this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.readFrameDocument(n), name);
  }

  channelOf(name: string): Promise<string> {
    return this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.channelOf(n), name);
  }

  placement(name: string): Promise<{ inLightDom: boolean; inShadow: boolean }> {
    return this.page.evaluate((n) => (globalThis as unknown as HarnessWindow).harness.placement(n), name);
  }

  overflow(selector: string): Promise<{ scrollWidth: number; clientWidth: number }> {
    return this.page.evaluate((s) => (globalThis as unknown as HarnessWindow).harness.overflow(s), selector);
  }

  /** Types a card with the keyboard into the number, expiry and CVC inputs. */
  async typeCard(name: string, card: { number: string; cvc: string }, expiry = futureExpiry()): Promise<void> {
    const fields = this.fields(name);
    await fields.locator('#number').pressSequentially(card.number);
    await fields.locator('#expiry').pressSequentially(expiry);
    await fields.locator('#cvc').pressSequentially(card.cvc);
  }
}

/** December of next year, as typed: `MMYY`. */
export function futureExpiry(): string {
  return `12${String((new Date().getFullYear() + 1) % 100).padStart(2, '0')}`;
}
