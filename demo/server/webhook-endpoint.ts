import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { newIdempotencyKey } from './context.ts';
import { safeError } from './errors.ts';
import { unanswered, type VaultClient, type VaultWebhookEndpoint } from './vault-client.ts';

/**
 * The events the shop subscribes to: every payment change (an order is
 * paid, voided or refunded by them), deleted tokens (a saved card the
 * vault no longer has leaves the account) and finished token batches (the
 * dashboard's card imports show it arrived).
 */
export const WEBHOOK_EVENTS: readonly string[] = ['payment.*', 'token.deleted', 'token_batch.completed'];

const FILE = 'webhook-endpoint.json';
/** What write-file-atomic names its temporary file: `<file>.<number>`. */
const UNFINISHED_WRITE = new RegExp(`^${FILE.replace('.', '\\.')}\\.\\d+$`);
/** A registration call that got no answer is sent again, same Idempotency-Key and body, this many times. */
const TRIES = 3;
const RETRY_DELAY_MS = 300;

const StoredEndpointSchema = z.strictObject({
  id: z.string().regex(/^we_[A-Za-z0-9]+$/),
  url: z.string().min(1),
  secret: z.string().regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/),
});

/** The shop's endpoint at the vault: its id, the URL it was registered with, and the secret that signs its deliveries. */
export type StoredWebhookEndpoint = z.infer<typeof StoredEndpointSchema>;

/** Where the shop keeps its endpoint and its signing secret, in its own data folder. */
export const webhookEndpointPath = (shopDataDir: string) => join(shopDataDir, FILE);

/**
 * The endpoint saved at the last registration, or `undefined` when there is
 * none or it cannot be used (then the secret counts as lost, and the next
 * registration asks the vault for a new one). Never throws and never says
 * what the file held: it holds a secret.
 */
export function loadWebhookEndpoint(shopDataDir: string, log: Logger): StoredWebhookEndpoint | undefined {
  // A write killed between its temporary file and the rename: the file below is still the one in force.
  for (const name of readdirSync(shopDataDir).filter((entry) => UNFINISHED_WRITE.test(entry))) rmSync(join(shopDataDir, name), { force: true });
  const path = webhookEndpointPath(shopDataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') log.warn({ path, code }, 'the webhook endpoint file could not be read; its secret counts as lost');
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = StoredEndpointSchema.safeParse(json);
  if (!parsed.success) {
    log.warn({ path }, 'the webhook endpoint file does not hold {"id","url","secret"}; its secret counts as lost');
    return undefined;
  }
  return parsed.data;
}

/** Owner-only (0600), written to a temporary file, flushed and renamed over the old one: a crash leaves the old endpoint or the new one. */
export async function saveWebhookEndpoint(shopDataDir: string, endpoint: StoredWebhookEndpoint): Promise<void> {
  await writeFileAtomic(webhookEndpointPath(shopDataDir), `${JSON.stringify(endpoint)}\n`, { mode: 0o600, fsync: true });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sameEvents = (a: readonly string[], b: readonly string[]) => [...a].sort().join(' ') === [...b].sort().join(' ');

/**
 * The shop's webhook endpoint at the vault. `register()`, at every start,
 * makes sure the merchant has exactly one endpoint pointing at the shop's
 * receiver and that the shop holds its secret:
 *
 * - the endpoint saved last still exists: reused (its URL, events and
 *   `disabled` put right if they drifted);
 * - it was deleted, and none points at the receiver: a new one is made;
 * - one points at the receiver but the shop has no secret for it (the
 *   file was lost, or the answer that carried the secret): its secret is
 *   rotated, so the shop holds the new one. A new endpoint would leave the
 *   old one sending, signed with a secret nobody has.
 *
 * The secret is kept in `<shop data>/webhook-endpoint.json` (0600), never in
 * the database, a log line or a page. The receiver verifies with `verifiers()`.
 */
export class ShopWebhookEndpoint {
  readonly #vault: VaultClient;
  readonly #shopDataDir: string;
  readonly #url: string;
  readonly #log: Logger;
  #endpoint: StoredWebhookEndpoint | undefined;
  #verifiers: Webhook[] = [];

  constructor(deps: { vault: VaultClient; shopDataDir: string; url: string; log: Logger }) {
    this.#vault = deps.vault;
    this.#shopDataDir = deps.shopDataDir;
    // As the vault stores it (the URL parser's form), so the two compare.
    this.#url = new URL(deps.url).href;
    this.#log = deps.log;
    this.#use(loadWebhookEndpoint(deps.shopDataDir, deps.log));
  }

  /** Where the vault sends the shop's events. */
  get url(): string {
    return this.#url;
  }

  /** The endpoint's id at the vault, once the shop holds its secret. */
  get id(): string | undefined {
    return this.#endpoint?.id;
  }

  /** One verifier per secret the shop holds (none before the first registration). */
  verifiers(): readonly Webhook[] {
    return this.#verifiers;
  }

  /**
   * Registers (or finds again) the shop's endpoint. Never throws: a vault
   * that is down or refuses leaves the shop running without webhooks (the
   * dashboard says so), and the next start tries again.
   */
  async register(): Promise<void> {
    try {
      await this.#register();
    } catch (error) {
      this.#log.error({ err: safeError(error) }, 'the webhook endpoint could not be registered; the shop runs without webhooks until its next start');
    }
  }

  async #register(): Promise<void> {
    const listed = await this.#retrying(() => this.#vault.webhookEndpoints());
    const saved = this.#endpoint;
    const pointingHere = listed.filter((endpoint) => endpoint.url === this.#url);
    const known = saved === undefined ? undefined : listed.find((endpoint) => endpoint.id === saved.id);
    let endpoint: VaultWebhookEndpoint;
    if (saved !== undefined && known !== undefined) {
      endpoint = known;
      this.#log.info({ webhook_endpoint: endpoint.id }, 'webhook endpoint found at the vault; reused');
    } else if (pointingHere[0] !== undefined) {
      const key = newIdempotencyKey('webhook-rotate');
      const rotated = await this.#retrying(() => this.#vault.rotateWebhookSecret(pointingHere[0]!.id, key));
      await this.#save({ id: rotated.id, url: rotated.url, secret: rotated.secret });
      endpoint = rotated;
      this.#log.warn({ webhook_endpoint: endpoint.id }, 'webhook endpoint found at the vault without its secret in the data folder; its secret was rotated');
    } else {
      const key = newIdempotencyKey('webhook-create');
      const created = await this.#retrying(() => this.#vault.createWebhookEndpoint({ url: this.#url, events: [...WEBHOOK_EVENTS] }, key));
      await this.#save({ id: created.id, url: created.url, secret: created.secret });
      endpoint = created;
      this.#log.info({ webhook_endpoint: endpoint.id, replaces: saved?.id }, 'webhook endpoint created');
    }

    const changes: { url?: string; events?: string[]; disabled?: boolean } = {};
    if (endpoint.url !== this.#url) changes.url = this.#url;
    if (!sameEvents(endpoint.events, WEBHOOK_EVENTS)) changes.events = [...WEBHOOK_EVENTS];
    if (endpoint.disabled) changes.disabled = false;
    if (Object.keys(changes).length > 0) {
      const key = newIdempotencyKey('webhook-update');
      const updated = await this.#retrying(() => this.#vault.updateWebhookEndpoint(endpoint.id, changes, key));
      if (changes.url !== undefined) await this.#save({ ...this.#endpoint!, url: updated.url });
      this.#log.info({ webhook_endpoint: endpoint.id, changed: Object.keys(changes), was_disabled: endpoint.disabled_reason }, 'webhook endpoint put right');
    }
    const others = pointingHere.filter((other) => other.id !== endpoint.id).map((other) => other.id);
    if (others.length > 0) {
      this.#log.warn({ webhook_endpoint: endpoint.id, others }, 'other webhook endpoints point at the shop, signed with secrets it does not hold: delete them');
    }
  }

  /** Uses the endpoint at once, then saves it; a failed save is logged, and the next start rotates the secret it lost. */
  async #save(endpoint: StoredWebhookEndpoint): Promise<void> {
    this.#use(endpoint);
    try {
      await saveWebhookEndpoint(this.#shopDataDir, endpoint);
    } catch (error) {
      this.#log.error({ err: safeError(error) }, 'the webhook endpoint could not be saved; the shop verifies with its secret until it stops');
    }
  }

  #use(endpoint: StoredWebhookEndpoint | undefined): void {
    this.#endpoint = endpoint;
    this.#verifiers = endpoint === undefined ? [] : [new Webhook(endpoint.secret)];
  }

  async #retrying<T>(call: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await call();
      } catch (error) {
        if (!unanswered(error) || tries >= TRIES) throw error;
        this.#log.warn({ tries }, 'webhook endpoint call unanswered; sending it again');
        await sleep(RETRY_DELAY_MS * tries);
      }
    }
  }
}
