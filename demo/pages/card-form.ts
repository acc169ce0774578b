/**
 * A form around the card fields: the button and the shopper's Enter in the
 * fields (the card's `submit` event) both tokenize, only one tokenization and
 * shop call runs at a time (a double click is one order), and progress and
 * errors are announced. The fields stay mounted after a failure, so the
 * shopper corrects the card or types another and tries again.
 */
import type { Card, CardOptions, CvcResult, Tessera, TokenResult } from '../../widget/loader/types.ts';
import { failureMessage, type Notices } from './shop.ts';

export interface CardFormSetup {
  form: HTMLFormElement;
  button: HTMLElement;
  /** Where the fields go (a selector). */
  container: string;
  notices: Notices;
  /** Announced while the card is tokenized and sent to the shop's server. */
  working: string;
  /** Sends the result to the shop's server and shows the outcome; rejects with a `ShopApiError`. Resolves with a line to announce, if any. */
  complete(result: TokenResult | CvcResult, card: Card): Promise<string | void>;
}

export interface CardForm {
  /** Replaces the mounted fields with new ones (another mode, say). */
  mount(options: CardOptions): void;
  readonly card: Card | undefined;
}

export function createCardForm(tessera: Tessera, setup: CardFormSetup): CardForm {
  const { form, button, notices } = setup;
  let card: Card | undefined;
  let ready = false;
  let busy = false;
  // aria-disabled rather than disabled: the button stays focusable and announced while it cannot act.
  const setEnabled = () => button.setAttribute('aria-disabled', String(!ready || busy));

  const run = async (tokenize: () => Promise<TokenResult | CvcResult>) => {
    if (!card || !ready || busy) return;
    const current = card;
    busy = true;
    setEnabled();
    notices.progress(setup.working);
    try {
      const done = await setup.complete(await tokenize(), current);
      if (done) notices.progress(done);
      else notices.clear();
    } catch (error) {
      const message = failureMessage(error);
      if (message === undefined) notices.clear();
      else notices.error(message);
    } finally {
      busy = false;
      setEnabled();
    }
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (card) void run(() => card!.tokenize());
  });

  return {
    get card() {
      return card;
    },
    mount(options) {
      card?.destroy();
      ready = false;
      setEnabled();
      const next = tessera.card(options);
      card = next;
      next
        .on('ready', () => {
          if (card !== next) return;
          ready = true;
          setEnabled();
        })
        .on('error', (error) => {
          if (card !== next) return;
          ready = false;
          setEnabled();
          notices.error(`Card payments are unavailable on this page: ${error.message} (${error.code})`);
        })
        .on('submit', (event) => void run(() => (event.ok ? Promise.resolve(event.value) : Promise.reject(event.error))))
        .mount(setup.container);
    },
  };
}
