/**
 * The merchant dashboard: orders with their payments (capture, void,
 * refund), the capture, unique-tokens and network-tokens settings, the saved
 * cards with their network tokens (and the sandbox issuer's changes), the secret key roll, the
 * webhook deliveries (with Resend), subscriptions with the sandbox clock,
 * phone orders (dashboard-subscriptions.ts), the migration of cards on file
 * (dashboard-card-import.ts), and the vault's audit events — all
 * through the shop's backend, which holds the secret key and the webhook
 * secret (this page never sees either, not even a new one).
 */
import { setUpCardImport } from './dashboard-card-import.ts';
import { renderSubscriptions, setUpSubscriptions } from './dashboard-subscriptions.ts';
import { byId, callShop, describeCard, el, failureMessage, formatAmount, getJson, initHeader, Notices, postJson, ShopApiError, type Order } from './shop.ts';

interface Payment {
  id: string;
  status: string;
  amount: number;
  currency: string;
  amountCaptured: number;
  amountRefunded: number;
}

interface DashboardOrder extends Order {
  customer: string;
  payment: Payment | undefined;
}

interface AuditEvent {
  id: string;
  action: string;
  outcome: string;
  code: string | null;
  actor: string;
  token: string | null;
  payment: string | null;
  created_at: string;
}

/** The last secret key roll: when, and when the keys before it stop working. */
interface KeyRoll {
  status: 'pending' | 'done' | 'failed';
  requestedAt: string;
  previousKeysExpireAt: string | null;
}

/** A saved card and its network token (never the network token's number: the vault does not send it). */
interface SavedCardRow {
  customer: string;
  card: { brand: string; last4: string; expMonth: number; expYear: number };
  networkToken: { id: string; network: string; status: string; cardArtId: string | null } | null;
}

interface Dashboard {
  settings: { captureAtCheckout: boolean; uniqueTokens: boolean; networkTokens: boolean };
  savedCards: SavedCardRow[];
  orders: DashboardOrder[];
  keyRoll: KeyRoll | null;
  events: AuditEvent[];
}

/** One try to deliver an event: the receiver's status code, or the vault's fixed name for what went wrong. */
interface DeliveryAttempt {
  attempt: number;
  attemptedAt: string;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
}

interface Delivery {
  id: string;
  event: string;
  eventType: string;
  state: 'pending' | 'delivered' | 'failed';
  createdAt: string;
  nextAttemptAt: string | null;
  attempts: DeliveryAttempt[];
  /** The shop's record of the event: when its first delivery arrived, and what it changed. */
  received: { at: string; effect: string | null } | null;
}

interface Webhooks {
  url: string;
  endpoint: { id: string; url: string; events: string[]; disabled: boolean; disabledReason: string | null } | null;
  deliveries: Delivery[];
  problem: 'not_registered' | 'deleted' | null;
}

interface PaymentLink {
  id: string;
  url: string;
  status: 'active' | 'completed' | 'expired';
  amount: number;
  currency: string;
  description: string | null;
  customerEmail: string | null;
  qr: string;
}

interface BatchProgress {
  batch: { id: string; status: string; total: number; processed: number; succeeded: number; failed: number };
  results: { order: string | null; ok: boolean; status: string | null; error: string | null }[];
}

const notices = new Notices(byId('status'), byId('error'));

/** Deliveries still pending are looked at again every second, this many times, then left to the Refresh button. */
const POLLS = 30;
let pollsLeft = POLLS;
let pollTimer: ReturnType<typeof setTimeout> | undefined;

/** Which buttons a payment's status allows. */
const ACTIONS: Record<string, ('capture' | 'void' | 'refund')[]> = {
  authorized: ['capture', 'void'],
  captured: ['refund'],
  partially_refunded: ['refund'],
};
const ACTION_LABELS = { capture: 'Capture', void: 'Void', refund: 'Refund' } as const;

function orderRow(order: DashboardOrder): HTMLTableRowElement {
  const status = order.payment?.status ?? order.status;
  const actions = el('td', { className: 'actions' });
  for (const action of ACTIONS[status] ?? []) {
    const button = el('button', { type: 'button', className: 'button' }, ACTION_LABELS[action]);
    button.setAttribute('aria-label', `${ACTION_LABELS[action]} order ${order.id}`);
    button.addEventListener('click', async () => {
      button.setAttribute('aria-disabled', 'true');
      try {
        const { payment } = await postJson<{ payment: Payment }>(`/api/dashboard/orders/${order.id}/${action}`);
        notices.progress(`Order ${order.id}: payment ${payment.status}.`);
        await render();
      } catch (failure) {
        notices.error(failureMessage(failure) ?? '');
        button.removeAttribute('aria-disabled');
      }
    });
    actions.append(button);
  }
  return el(
    'tr',
    { id: `order-${order.id}` },
    el('td', {}, el('code', {}, order.id)),
    el('td', {}, order.customer),
    el('td', {}, formatAmount(order.amount, order.currency)),
    el('td', {}, order.card ? describeCard(order.card) : '—'),
    el('td', {}, el('span', { className: `badge status-${status}` }, status)),
    actions,
  );
}

/** Which issuer-side changes a network token's status allows. */
const LIFECYCLE: Record<string, ('suspend' | 'resume' | 'delete' | 'reissue')[]> = {
  active: ['suspend', 'delete', 'reissue'],
  suspended: ['resume', 'delete'],
};
const LIFECYCLE_LABELS = { suspend: 'Suspend', resume: 'Resume', delete: 'Delete', reissue: 'Reissue card' } as const;

function savedCardRow(row: SavedCardRow): HTMLTableRowElement {
  const nt = row.networkToken;
  const label = describeCard(row.card);
  const actions = el('td', { className: 'actions' });
  for (const event of nt ? (LIFECYCLE[nt.status] ?? []) : []) {
    const button = el('button', { type: 'button', className: 'button' }, LIFECYCLE_LABELS[event]);
    button.setAttribute('aria-label', `${LIFECYCLE_LABELS[event]}: network token of ${label} (${row.customer})`);
    button.addEventListener('click', async () => {
      button.setAttribute('aria-disabled', 'true');
      try {
        const { networkToken } = await postJson<{ networkToken: { status: string } }>(`/api/dashboard/network-tokens/${nt!.id}/lifecycle`, { event });
        notices.progress(`Network token of ${label}: ${networkToken.status}.`);
        await render();
      } catch (failure) {
        notices.error(failureMessage(failure) ?? '');
        button.removeAttribute('aria-disabled');
      }
    });
    actions.append(button);
  }
  return el(
    'tr',
    {},
    el('td', {}, row.customer),
    el('td', {}, label),
    el('td', {}, nt ? el('span', { className: `badge network-token-${nt.status}` }, `${nt.network} · ${nt.status}`) : '—'),
    el('td', {}, nt?.cardArtId ? el('code', {}, nt.cardArtId) : '—'),
    actions,
  );
}

function eventRow(event: AuditEvent): HTMLTableRowElement {
  return el(
    'tr',
    {},
    el('td', {}, new Date(event.created_at).toLocaleTimeString('en-GB')),
    el('td', {}, event.action),
    el('td', {}, event.code ? `${event.outcome} (${event.code})` : event.outcome),
    el('td', {}, el('code', {}, event.payment ?? event.token ?? '')),
    el('td', {}, el('code', {}, event.actor)),
  );
}

const time = (iso: string) => new Date(iso).toLocaleTimeString('en-GB');

/** The endpoint in words: where events go, or what is wrong and how to fix it. */
function describeEndpoint(webhooks: Webhooks): (Node | string)[] {
  if (webhooks.problem === 'not_registered') {
    return ['The shop has no webhook endpoint at the vault: registering it failed when the shop started (its log says why). Restart the shop to try again.'];
  }
  if (webhooks.problem === 'deleted' || webhooks.endpoint === null) return ['The shop’s webhook endpoint was deleted at the vault. Restart the shop: it registers a new one.'];
  const { endpoint } = webhooks;
  const where = [`Events ${endpoint.events.join(', ')} go to `, el('code', {}, endpoint.url), '.'];
  return endpoint.disabled
    ? [...where, ` The endpoint is disabled (${endpoint.disabledReason === 'gone' ? 'the shop answered 410' : 'by the merchant'}): restart the shop to enable it.`]
    : [...where, ' The shop holds its signing secret.'];
}

function attemptItem(attempt: DeliveryAttempt): HTMLLIElement {
  const outcome = attempt.statusCode === null ? `no answer (${attempt.error ?? 'error'})` : String(attempt.statusCode);
  return el('li', {}, `${attempt.attempt}. ${outcome} at ${time(attempt.attemptedAt)}, ${attempt.latencyMs} ms`);
}

function deliveryRow(delivery: Delivery): HTMLTableRowElement {
  const resend = el('button', { type: 'button', className: 'button', id: `resend-${delivery.id}` }, 'Resend');
  resend.setAttribute('aria-label', `Resend ${delivery.eventType} (${delivery.event})`);
  resend.addEventListener('click', () => void resendDelivery(delivery, resend));
  const state = el('span', { className: `badge status-${delivery.state}` }, delivery.state);
  const next = delivery.state === 'pending' && delivery.nextAttemptAt ? el('span', { className: 'when' }, `next try at ${time(delivery.nextAttemptAt)}`) : '';
  const inShop = delivery.received
    ? `Stored at ${time(delivery.received.at)}: ${delivery.received.effect ?? 'nothing to change'}`
    : 'Not received yet';
  return el(
    'tr',
    { id: `delivery-${delivery.id}` },
    el('td', {}, delivery.eventType, el('span', { className: 'when' }, el('code', {}, delivery.event)), el('span', { className: 'when' }, time(delivery.createdAt))),
    el('td', {}, state, next),
    el('td', {}, delivery.attempts.length ? el('ol', { className: 'attempts' }, ...delivery.attempts.map(attemptItem)) : 'none yet'),
    el('td', {}, inShop),
    el('td', { className: 'actions' }, resend),
  );
}

/** The webhooks panel alone, so a delivery under way is followed without redrawing the orders under the merchant's pointer. */
async function renderWebhooks(): Promise<void> {
  clearTimeout(pollTimer);
  const webhooks = await getJson<Webhooks>('/api/dashboard/webhooks');
  byId('webhook-endpoint').replaceChildren(...describeEndpoint(webhooks));
  // A redraw replaces the buttons: the one that had focus gets it back.
  const focused = document.activeElement?.id;
  byId<HTMLTableElement>('deliveries-table').tBodies[0]!.replaceChildren(
    ...(webhooks.deliveries.length ? webhooks.deliveries.map(deliveryRow) : [el('tr', {}, el('td', { colSpan: 5 }, 'No deliveries yet.'))]),
  );
  if (focused) document.getElementById(focused)?.focus();
  if (webhooks.deliveries.some((delivery) => delivery.state === 'pending') && pollsLeft > 0) {
    pollsLeft -= 1;
    pollTimer = setTimeout(() => void renderWebhooks().catch(() => undefined), 1000);
  }
}

async function resendDelivery(delivery: Delivery, button: HTMLButtonElement): Promise<void> {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    await postJson(`/api/dashboard/webhooks/deliveries/${delivery.id}/resend`);
    notices.progress(`The vault sends ${delivery.eventType} to the shop again now.`);
    pollsLeft = POLLS;
    await renderWebhooks();
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
    button.removeAttribute('aria-disabled');
  }
}

const when = (iso: string) => new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });

/** When the keys before a roll stop (or stopped) working. */
const previousKeyWords = (expires: string) =>
  Date.parse(expires) <= Date.now() ? `The previous key stopped working on ${when(expires)}.` : `The previous key keeps working until ${when(expires)}.`;

/** What the last roll means for the keys, in words. */
function describeKeyRoll(roll: KeyRoll | null): string {
  if (roll === null) return 'Never rolled: the shop uses the secret key the vault gave it on its first start.';
  if (roll.status === 'pending') return `The roll asked for on ${when(roll.requestedAt)} got no answer from the vault yet. Roll again to finish it.`;
  if (roll.status === 'failed' || roll.previousKeysExpireAt === null) return `The roll asked for on ${when(roll.requestedAt)} failed; the shop’s log says why.`;
  return `Rolled on ${when(roll.requestedAt)}. ${previousKeyWords(roll.previousKeysExpireAt)}`;
}

async function rollKey(form: HTMLFormElement): Promise<void> {
  const button = byId('roll-key');
  if (button.getAttribute('aria-disabled') === 'true') return;
  const choice = form.querySelector<HTMLInputElement>('input[name="expires-in"]:checked');
  button.setAttribute('aria-disabled', 'true');
  notices.progress('Rolling the secret key…');
  try {
    const { keyRoll } = await postJson<{ keyRoll: KeyRoll }>('/api/dashboard/keys/roll', { expiresIn: Number(choice?.value ?? 86400) });
    await render();
    notices.progress(`Secret key rolled: the shop uses the new key. ${previousKeyWords(keyRoll.previousKeysExpireAt ?? keyRoll.requestedAt)}`);
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
    await render().catch(() => undefined);
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

function linkRow(link: PaymentLink): HTMLTableRowElement {
  const actions = el('td', { className: 'actions' });
  if (link.status === 'active') {
    const expire = el('button', { type: 'button', className: 'button' }, 'Expire');
    expire.setAttribute('aria-label', `Expire payment link ${link.id}`);
    expire.addEventListener('click', async () => {
      expire.setAttribute('aria-disabled', 'true');
      try {
        await postJson(`/api/dashboard/links/${link.id}/expire`);
        notices.progress(`Payment link ${link.id} expired: it takes no more payments.`);
        await renderLinks();
      } catch (failure) {
        notices.error(failureMessage(failure) ?? '');
        expire.removeAttribute('aria-disabled');
      }
    });
    actions.append(expire);
  }
  return el(
    'tr',
    { id: `link-${link.id}` },
    el('td', {}, el('a', { href: link.url, target: '_blank', rel: 'noopener' }, link.id)),
    el('td', {}, link.description ?? '', link.customerEmail ? el('span', { className: 'when' }, link.customerEmail) : ''),
    el('td', {}, formatAmount(link.amount, link.currency)),
    el('td', {}, el('span', { className: `badge status-${link.status}` }, link.status)),
    actions,
  );
}

async function renderLinks(): Promise<void> {
  const { links } = await getJson<{ links: PaymentLink[] }>('/api/dashboard/links');
  byId<HTMLTableElement>('links-table').tBodies[0]!.replaceChildren(
    ...(links.length ? links.map(linkRow) : [el('tr', {}, el('td', { colSpan: 5 }, 'No payment links yet.'))]),
  );
}

async function createLink(form: HTMLFormElement): Promise<void> {
  const button = byId('create-link');
  if (button.getAttribute('aria-disabled') === 'true') return;
  const amount = Math.round(Number(byId<HTMLInputElement>('link-amount').value.replace(',', '.')) * 100);
  if (!Number.isFinite(amount) || amount < 50) return notices.error('Enter an amount of at least 0.50 EUR.');
  const email = byId<HTMLInputElement>('link-email').value.trim();
  button.setAttribute('aria-disabled', 'true');
  try {
    const { link } = await postJson<{ link: PaymentLink }>('/api/dashboard/links', {
      amount,
      description: byId<HTMLInputElement>('link-description').value,
      ...(email === '' ? {} : { customerEmail: email }),
      requestId: crypto.randomUUID(),
    });
    const anchor = byId<HTMLAnchorElement>('new-link-url');
    anchor.href = link.url;
    anchor.textContent = link.url;
    byId<HTMLImageElement>('new-link-qr').src = link.qr;
    byId('new-link').hidden = false;
    form.reset();
    notices.progress(`Payment link created for ${formatAmount(link.amount, link.currency)}.`);
    await renderLinks();
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** Starts one capture batch for every authorized order and follows it to its end. */
async function captureAll(): Promise<void> {
  const button = byId('capture-all');
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    const { batch } = await postJson<{ batch: BatchProgress['batch'] }>('/api/dashboard/orders/capture-all');
    byId('batch').hidden = false;
    byId('batch-results').replaceChildren();
    for (;;) {
      const progress = await getJson<BatchProgress>(`/api/dashboard/batches/${batch.id}`);
      const { processed, total, succeeded, failed } = progress.batch;
      const bar = byId<HTMLProgressElement>('batch-bar');
      bar.max = total;
      bar.value = processed;
      if (progress.batch.status === 'completed') {
        byId('batch-progress').textContent = `Capture batch done: ${succeeded} captured, ${failed} failed.`;
        byId('batch-results').replaceChildren(
          ...progress.results.map((r) => el('li', {}, `Order ${r.order ?? '?'}: ${r.ok ? (r.status ?? 'done') : `failed (${r.error ?? 'error'})`}`)),
        );
        break;
      }
      byId('batch-progress').textContent = `Capturing: ${processed} of ${total} payments processed…`;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    await render();
  } catch (failure) {
    notices.error(failureMessage(failure) ?? '');
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

async function render(): Promise<void> {
  const dashboard = await getJson<Dashboard>('/api/dashboard');
  byId('login-panel').hidden = true;
  byId('dashboard').hidden = false;
  // Its buttons work from the moment it shows, not once the rest of it is drawn: a click on "Take a phone order"
  // before the links and webhooks had loaded did nothing (seen in the e2e run).
  showDashboardTools();
  byId<HTMLInputElement>('capture-at-checkout').checked = dashboard.settings.captureAtCheckout;
  byId<HTMLInputElement>('unique-tokens').checked = dashboard.settings.uniqueTokens;
  byId<HTMLInputElement>('network-tokens').checked = dashboard.settings.networkTokens;
  byId<HTMLTableElement>('saved-cards-table').tBodies[0]!.replaceChildren(
    ...(dashboard.savedCards.length ? dashboard.savedCards.map(savedCardRow) : [el('tr', {}, el('td', { colSpan: 5 }, 'No saved cards yet.'))]),
  );
  byId('key-roll').textContent = describeKeyRoll(dashboard.keyRoll);
  const orders = byId<HTMLTableElement>('orders-table').tBodies[0]!;
  orders.replaceChildren(...(dashboard.orders.length ? dashboard.orders.map(orderRow) : [el('tr', {}, el('td', { colSpan: 6 }, 'No orders yet.'))]));
  byId<HTMLTableElement>('events-table').tBodies[0]!.replaceChildren(...dashboard.events.map(eventRow));
  await renderLinks();
  pollsLeft = POLLS;
  await renderWebhooks();
}

let subscriptionsSetUp = false;
/**
 * Once the dashboard shows: the subscriptions panel (drawn again only by its
 * own actions, not by every order action), the clock's button, the phone
 * order's card fields, and the card import (which redraws the webhooks
 * panel once its completion event came).
 */
function showDashboardTools(): void {
  if (subscriptionsSetUp) return;
  subscriptionsSetUp = true;
  renderSubscriptions().catch((failure: unknown) => notices.error(failureMessage(failure) ?? ''));
  setUpSubscriptions(notices, render);
  setUpCardImport(() => {
    pollsLeft = POLLS;
    return renderWebhooks();
  });
}

async function saveSetting(name: 'captureAtCheckout' | 'uniqueTokens' | 'networkTokens', input: HTMLInputElement): Promise<void> {
  try {
    await callShop('PATCH', '/api/dashboard/settings', { [name]: input.checked });
    notices.progress('Setting saved.');
  } catch (failure) {
    input.checked = !input.checked;
    notices.error(failureMessage(failure) ?? '');
  }
}

async function main(): Promise<void> {
  void initHeader();
  for (const [id, name] of [
    ['capture-at-checkout', 'captureAtCheckout'],
    ['unique-tokens', 'uniqueTokens'],
    ['network-tokens', 'networkTokens'],
  ] as const) {
    const input = byId<HTMLInputElement>(id);
    input.addEventListener('change', () => void saveSetting(name, input));
  }
  byId('refresh-deliveries').addEventListener('click', () => {
    pollsLeft = POLLS;
    renderWebhooks().catch((failure: unknown) => notices.error(failureMessage(failure) ?? ''));
  });
  const linkForm = byId<HTMLFormElement>('link-form');
  linkForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void createLink(linkForm);
  });
  byId('capture-all').addEventListener('click', () => void captureAll());
  const rollForm = byId<HTMLFormElement>('roll-form');
  rollForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void rollKey(rollForm);
  });
  byId<HTMLFormElement>('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await postJson('/api/dashboard/login', { password: byId<HTMLInputElement>('password').value });
      notices.clear();
      await render();
    } catch (failure) {
      notices.error(failureMessage(failure) ?? '');
    }
  });
  try {
    await render();
  } catch (failure) {
    if (failure instanceof ShopApiError && failure.status === 401) {
      byId('login-panel').hidden = false;
      return;
    }
    notices.error(failureMessage(failure) ?? '');
  }
}

void main();
