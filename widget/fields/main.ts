/**
 * Entry point of the fields document the vault serves at `/v1/fields`: reads
 * the embedded configuration, says hello to the parent origin the vault
 * confirmed, and after `tessera:init` talks to the merchant page only over
 * the port it was handed.
 */
import * as z from 'zod/mini';
import { FIELDS_UNAVAILABLE } from '../shared/errors.ts';
import {
  PROTOCOL_VERSION,
  SHOPPER_SUBMIT_ID,
  type CardOptions,
  type CvcResult,
  type FrameToParentMessage,
  type HelloMessage,
  type ParentToFrameMessage,
  type TokenResult,
} from '../shared/messages.ts';
import { CardFields } from './card-fields.ts';
import './card-fields.css';
import { readFieldsConfig, type FieldsConfig } from './config.ts';
import { encryptForVault } from './encrypt.ts';
import { acceptInit } from './handshake.ts';
import { resolveLocale } from './i18n/index.ts';
import { merchantStyleSheet } from './merchant-style.ts';
import { parsePortMessage } from './messages.ts';
import { createTokenizer } from './tokenizer.ts';
import type { Outcome } from './vault-client.ts';

// zod would otherwise probe `new Function`, which this document's CSP reports as a violation.
z.config({ jitless: true });

function start(config: FieldsConfig): void {
  const root = document.documentElement;
  const channel = location.hash.slice(1);
  const fields = new CardFields();
  const tokenize = createTokenizer(config);
  let port: MessagePort | undefined;
  let options: CardOptions = {};
  let inflight: Promise<Outcome<TokenResult | CvcResult>> | undefined;

  const post = (message: FrameToParentMessage): void => port?.postMessage(message);

  const apply = (next: CardOptions): void => {
    options = next;
    const locale = resolveLocale(next.locale);
    root.lang = locale.lang;
    root.dir = locale.dir;
    root.classList.toggle('dark', next.colorScheme === 'dark');
    document.adoptedStyleSheets = [merchantStyleSheet(next.style)];
    Object.assign(fields, {
      mode: next.mode ?? 'payment',
      saveCard: next.saveCard ?? 'never',
      collectName: !!next.fields?.name,
      collectPostalCode: !!next.fields?.postalCode,
      savedBrand: next.brand,
      savedLast4: next.last4,
      messages: locale.messages,
    });
  };

  const tokenizeCard = async (): Promise<Outcome<TokenResult | CvcResult>> => {
    const collected = fields.collect();
    if ('error' in collected) return { ok: false, error: collected.error };
    if (options.mode === 'cvc') return { ok: true, value: { cvc: await encryptForVault(collected.card, config.jwks.keys[0]) } };
    const outcome = await tokenize({ ...collected, customer: options.customer });
    if (!outcome.ok) fields.showFailure(outcome.error);
    return outcome;
  };

  /** One tokenization at a time: a request while one runs gets that one's result, so a double click makes one token. */
  const answer = (id: number): void => {
    inflight ??= tokenizeCard()
      .catch((): Outcome<never> => ({ ok: false, error: FIELDS_UNAVAILABLE }))
      .finally(() => (inflight = undefined));
    void inflight.then((outcome) => post({ type: 'result', id, ...outcome }));
  };

  const dispatch = (message: ParentToFrameMessage): void => {
    switch (message.type) {
      case 'update':
        return apply(message.options);
      case 'tokenize':
        return answer(message.id);
      case 'focus':
        return fields.focusField(message.field);
      case 'clear':
        return fields.clear();
    }
  };

  const onWindowMessage = (event: MessageEvent): void => {
    const accepted = acceptInit(event, { origin: config.parentOrigin, window: parent, channel });
    if (!accepted) return;
    removeEventListener('message', onWindowMessage);
    port = accepted.port;
    port.onmessage = (portEvent) => {
      const message = parsePortMessage(portEvent.data);
      if (message) dispatch(message);
    };
    apply(accepted.init.options);
    fields.submit = () => answer(SHOPPER_SUBMIT_ID);
    document.body.append(fields);
    void fields.updateComplete.then(() => {
      fields.report = post;
      post({ type: 'ready' });
      new ResizeObserver(() => post({ type: 'resize', height: Math.ceil(root.getBoundingClientRect().height) })).observe(root);
    });
  };

  addEventListener('message', onWindowMessage);
  const hello: HelloMessage = { v: PROTOCOL_VERSION, type: 'tessera:hello', channel };
  parent.postMessage(hello, config.parentOrigin);
}

const config = readFieldsConfig();
// Without a valid configuration the fields never say hello; the loader then asks the vault why.
if (config) start(config);
