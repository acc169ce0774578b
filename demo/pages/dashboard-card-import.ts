/**
 * The dashboard's "Migrate cards on file": the merchant's CSV of saved cards
 * goes to the shop's own server, which encrypts each row to the vault's key
 * and sends them as one token batch. This page follows the batch, shows its
 * results a page at a time, and says when the vault's signed
 * `token_batch.completed` webhook reached the shop. Nothing it gets back
 * holds a card number: tokens, brands, last 4 and error codes.
 */
import { byId, describeCard, el, failureMessage, formatExpiry, getJson, Notices, postJson } from './shop.ts';

interface CardImport {
  id: string;
  status: 'pending' | 'processing' | 'completed';
  correlationId: string | null;
  total: number;
  processed: number;
  succeeded: number;
  failed: number;
  networkTokens: { requested: number; pending: number; active: number; ineligible: number; declined: number } | null;
}

interface ImportState {
  import: CardImport;
  /** When the shop's webhook receiver stored the batch's `token_batch.completed` event, if it has. */
  webhook: { receivedAt: string } | null;
}

interface ImportResult {
  row: number;
  reference: string | null;
  ok: boolean;
  token: string | null;
  card: { brand: string; last4: string; expMonth: number; expYear: number } | null;
  error: { code: string; message: string } | null;
}

/** What the shop's server takes in one file (its own limit, in bytes). */
const MAX_FILE_BYTES = 512 * 1024;
const POLL_MS = 300;
/** After the batch completes, the webhook is looked for every half second, this many times. */
const WEBHOOK_POLLS = 40;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const time = (iso: string) => new Date(iso).toLocaleTimeString('en-GB');

/** The sample file: the sandbox's approving test cards, and one with a wrong check digit to show a row that fails. */
function sampleCsv(): string {
  const year = new Date().getFullYear() + 3;
  return [
    'number,exp_month,exp_year,cvc,name,postal_code,reference,customer,reusable,decline_duplicates',
    `4242 4242 4242 4242,12,${year},,Ada Lovelace,SW1A 1AA,crm-1001,cus_1001,true,false`,
    `5555 5555 5555 4444,6,${year},,Grace Hopper,,crm-1002,cus_1002,,`,
    `3782 822463 10005,9,${year},,Mary Somerville,,crm-1003,cus_1003,,`,
    `4242 4242 4242 4241,3,${year},,Emmy Noether,,crm-1004,cus_1004,,`,
    '',
  ].join('\r\n');
}

/** "3 cards tokenized, 1 failed", and the network tokens' states when the batch asked for them. */
function doneWords(done: CardImport): string {
  const name = done.correlationId === null ? '' : ` “${done.correlationId}”`;
  let words = `Card import${name} done: ${done.succeeded} ${done.succeeded === 1 ? 'card' : 'cards'} tokenized, ${done.failed} failed.`;
  if (done.networkTokens !== null) {
    const states = (['active', 'pending', 'ineligible', 'declined'] as const).filter((state) => done.networkTokens![state] > 0);
    words += ` Network tokens: ${states.length ? states.map((state) => `${done.networkTokens![state]} ${state}`).join(', ') : 'none requested'}.`;
  }
  return words;
}

function resultRow(result: ImportResult): HTMLTableRowElement {
  const outcome = result.ok
    ? [el('span', { className: 'badge status-tokenized' }, 'tokenized')]
    : [el('span', { className: 'badge status-failed' }, result.error?.code ?? 'failed'), el('span', { className: 'when' }, result.error?.message ?? '')];
  return el(
    'tr',
    { id: `card-import-row-${result.row}` },
    el('td', {}, String(result.row)),
    el('td', {}, result.reference ?? '—'),
    el('td', {}, result.token ? el('code', {}, result.token) : '—'),
    el('td', {}, result.card ? `${describeCard(result.card)}, ${formatExpiry(result.card.expMonth, result.card.expYear)}` : '—'),
    el('td', {}, ...outcome),
  );
}

/**
 * The panel: one import at a time; `afterImport` runs once its webhook came
 * (the Webhooks panel then shows the delivery).
 */
export function setUpCardImport(afterImport: () => Promise<void>): void {
  const notices = new Notices(byId('card-import-progress'), byId('card-import-error'));
  const form = byId<HTMLFormElement>('card-import-form');
  const button = byId('card-import-submit');
  const previous = byId<HTMLButtonElement>('card-import-previous');
  const next = byId<HTMLButtonElement>('card-import-next');
  /** The import shown, and the `after` of each results page up to the one shown (undefined: the first). */
  let shown: { id: string; pages: (number | undefined)[]; last: number | undefined } | undefined;

  const sample = byId<HTMLAnchorElement>('card-import-sample');
  sample.href = URL.createObjectURL(new Blob([sampleCsv()], { type: 'text/csv' }));

  async function showResults(): Promise<void> {
    if (shown === undefined) return;
    const after = shown.pages.at(-1);
    const { results, hasMore } = await getJson<{ results: ImportResult[]; hasMore: boolean }>(
      `/api/dashboard/card-imports/${shown.id}/results${after === undefined ? '' : `?after=${after}`}`,
    );
    byId<HTMLTableElement>('card-import-results').tBodies[0]!.replaceChildren(
      ...(results.length ? results.map(resultRow) : [el('tr', {}, el('td', { colSpan: 5 }, 'No results yet.'))]),
    );
    shown.last = results.at(-1)?.row;
    next.hidden = !hasMore;
    previous.hidden = shown.pages.length <= 1;
  }

  /** Progress until the batch completes, then its first page of results, then the webhook. */
  async function follow(id: string): Promise<void> {
    shown = { id, pages: [undefined], last: undefined };
    byId('card-import').hidden = false;
    byId<HTMLTableElement>('card-import-results').tBodies[0]!.replaceChildren();
    previous.hidden = true;
    next.hidden = true;
    const webhook = byId('card-import-webhook');
    webhook.textContent = '';
    const bar = byId<HTMLProgressElement>('card-import-bar');
    let state: ImportState;
    for (;;) {
      state = await getJson<ImportState>(`/api/dashboard/card-imports/${id}`);
      bar.max = Math.max(1, state.import.total);
      bar.value = state.import.processed;
      if (state.import.status === 'completed') break;
      notices.progress(`Tokenizing: ${state.import.processed} of ${state.import.total} cards processed…`);
      await sleep(POLL_MS);
    }
    notices.progress(doneWords(state.import));
    await showResults();
    for (let polls = 0; state.webhook === null && polls < WEBHOOK_POLLS; polls++) {
      webhook.textContent = 'Waiting for the vault’s token_batch.completed webhook…';
      await sleep(500);
      state = await getJson<ImportState>(`/api/dashboard/card-imports/${id}`);
    }
    webhook.textContent =
      state.webhook === null
        ? 'The token_batch.completed webhook has not reached the shop yet: the Webhooks panel shows its deliveries.'
        : `The vault’s token_batch.completed webhook reached the shop at ${time(state.webhook.receivedAt)}: signature checked, event stored once.`;
    await afterImport();
  }

  async function submit(): Promise<void> {
    if (button.getAttribute('aria-disabled') === 'true') return;
    const file = byId<HTMLInputElement>('card-import-file').files?.[0];
    if (file !== undefined && file.size > MAX_FILE_BYTES) return notices.error('The file is larger than the dashboard takes (512 KB). Split it, or use npm run tessera -- tokens import.');
    button.setAttribute('aria-disabled', 'true');
    try {
      const csv = file === undefined ? byId<HTMLTextAreaElement>('card-import-text').value : await file.text();
      if (csv.trim() === '') return notices.error('Choose a CSV file, or paste its rows.');
      const name = byId<HTMLInputElement>('card-import-name').value.trim();
      notices.progress('Encrypting the cards and sending them to the vault…');
      const { import: started } = await postJson<{ import: CardImport }>('/api/dashboard/card-imports', {
        csv,
        networkTokens: byId<HTMLInputElement>('card-import-network-tokens').checked,
        declineDuplicates: byId<HTMLInputElement>('card-import-decline-duplicates').checked,
        ...(name === '' ? {} : { correlationId: name }),
      });
      // Sent: the page lets go of the file and the pasted rows as well.
      form.reset();
      await follow(started.id);
    } catch (failure) {
      notices.error(failureMessage(failure) ?? '');
    } finally {
      button.removeAttribute('aria-disabled');
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit();
  });
  const turn = (change: () => void) => {
    if (shown === undefined) return;
    change();
    showResults().catch((failure: unknown) => notices.error(failureMessage(failure) ?? ''));
  };
  next.addEventListener('click', () => turn(() => shown!.pages.push(shown!.last)));
  previous.addEventListener('click', () => turn(() => shown!.pages.pop()));
}
