/**
 * The merchant dashboard: orders with their payments (capture, void,
 * refund), the capture and unique-tokens settings, the secret key roll, the
 * webhook deliveries (with Resend), subscriptions with the sandbox clock,
 * phone orders (dashboard-subscriptions.ts), and the vault's audit events — all
 * through the shop's backend, which holds the secret key and the webhook
 * secret (this page never sees either, not even a new one).
 */
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

interface Dashboard {
  settings: { captureAtCheckout: boolean; uniqueTokens: boolean };
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

async function render(): Promise<void> {
  const dashboard = await getJson<Dashboard>('/api/dashboard');
  byId('login-panel').hidden = true;
  byId('dashboard').hidden = false;
  byId<HTMLInputElement>('capture-at-checkout').checked = dashboard.settings.captureAtCheckout;
  byId<HTMLInputElement>('unique-tokens').checked = dashboard.settings.uniqueTokens;
  byId('key-roll').textContent = describeKeyRoll(dashboard.keyRoll);
  const orders = byId<HTMLTableElement>('orders-table').tBodies[0]!;
  orders.replaceChildren(...(dashboard.orders.length ? dashboard.orders.map(orderRow) : [el('tr', {}, el('td', { colSpan: 6 }, 'No orders yet.'))]));
  byId<HTMLTableElement>('events-table').tBodies[0]!.replaceChildren(...dashboard.events.map(eventRow));
  pollsLeft = POLLS;
  await renderWebhooks();
}

let subscriptionsSetUp = false;
/**
 * Once the dashboard shows: the subscriptions panel (drawn again only by its
 * own actions, not by every order action), the clock's button and the phone
 * order's card fields.
 */
function showDashboardTools(): void {
  if (subscriptionsSetUp) return;
  subscriptionsSetUp = true;
  renderSubscriptions().catch((failure: unknown) => notices.error(failureMessage(failure) ?? ''));
  setUpSubscriptions(notices, render);
}

async function saveSetting(name: 'captureAtCheckout' | 'uniqueTokens', input: HTMLInputElement): Promise<void> {
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
  for (const [id, name] of [['capture-at-checkout', 'captureAtCheckout'], ['unique-tokens', 'uniqueTokens']] as const) {
    const input = byId<HTMLInputElement>(id);
    input.addEventListener('change', () => void saveSetting(name, input));
  }
  byId('refresh-deliveries').addEventListener('click', () => {
    pollsLeft = POLLS;
    renderWebhooks().catch((failure: unknown) => notices.error(failureMessage(failure) ?? ''));
  });
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
      showDashboardTools();
    } catch (failure) {
      notices.error(failureMessage(failure) ?? '');
    }
  });
  try {
    await render();
    showDashboardTools();
  } catch (failure) {
    if (failure instanceof ShopApiError && failure.status === 401) {
      byId('login-panel').hidden = false;
      return;
    }
    notices.error(failureMessage(failure) ?? '');
  }
}

void main();
