/**
 * Entry point of the fields document the vault serves at `/v1/fields`: reads
 * the embedded configuration, says hello to the parent origin the vault
 * confirmed, and after `tessera:init` talks to the merchant page only over
 * the port it was handed.
 *
 * This bundle holds what the first render needs, in English. Another
 * locale is used at once when its chunk is already here (it starts loading
 * with this script when it is the browser's), else the fields show English,
 * say `ready`, and switch when it arrives. The typing rules and the tokenizer
 * (encryption, session, the calls to the vault) load right after `ready`, or
 * when the shopper first types or submits.
 */
import { FIELDS_UNAVAILABLE, NETWORK_ERROR } from '../shared/errors.ts';
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
import { acceptInit } from './handshake.ts';
import { loadedLocale, loadLocale, resolveLocale, type Locale } from './i18n/index.ts';
import { loadMerchantStyle, loadTokenizer, once } from './lazy.ts';
import { parsePortMessage } from './messages.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { Outcome } from './vault-client.ts';

/**
 * The fields' stylesheet, which the document names as a preload so that the
 * browser fetches it at once without holding this script back until it has
 * arrived (a `<link rel=stylesheet>` of the document's would, and on a cold
 * start it came after the script). Made a stylesheet here; settles when it
 * applies, or could not load (the fields then draw without it).
 */
const ownStyles = (): Promise<unknown> =>
  Promise.all(
    [...document.querySelectorAll<HTMLLinkElement>('link[rel=preload][as=style]')].map(
      (link) =>
        new Promise((settle) => {
          link.onload = link.onerror = settle;
          link.rel = 'stylesheet';
        }),
    ),
  );

function start(config: FieldsConfig): void {
  const root = document.documentElement;
  const channel = location.hash.slice(1);
  const styled = ownStyles();
  const fields = new CardFields();
  let port: MessagePort | undefined;
  let options: CardOptions = {};
  let inflight: Promise<Outcome<TokenResult | CvcResult>> | undefined;
  /** The latest options being applied, locale included; a tokenization waits for them. */
  let applying: Promise<unknown> = Promise.resolve();
  let applied = 0;

  const post = (message: FrameToParentMessage): void => port?.postMessage(message);

  /** The tokenizer, made once its chunk has loaded. */
  const loadTokenizerOnce = once(() => loadTokenizer().then((module) => module.createTokenizer(config)));

  const show = (next: CardOptions, locale: Locale, style: CSSStyleSheet[]): Promise<void> => {
    options = next;
    root.lang = locale.lang;
    root.dir = locale.dir;
    root.classList.toggle('dark', next.colorScheme === 'dark');
    document.adoptedStyleSheets = style;
    Object.assign(fields, {
      mode: next.mode ?? 'payment',
      saveCard: next.saveCard ?? 'never',
      collectName: !!next.fields?.name,
      collectPostalCode: !!next.fields?.postalCode,
      savedBrand: next.brand,
      savedLast4: next.last4,
      messages: locale.messages,
    });
    return fields.requestUpdate();
  };

  /** The merchant's style as a stylesheet (none when it could not be loaded: the fields' own look then). */
  const merchantStyle = async (style: CardOptions['style']): Promise<CSSStyleSheet[]> =>
    style ? loadMerchantStyle().then((module) => [module.merchantStyleSheet(style)], () => []) : [];

  /**
   * Applies new options: with the fields' and the merchant's styles, in their locale if it is
   * here, else in English until it is. Resolves with their first render, or
   * with that of options that came meanwhile, which win; `applying` settles
   * once the locale is in place too.
   */
  let rendered: Promise<void> = Promise.resolve();
  const apply = (next: CardOptions): Promise<void> => {
    const turn = ++applied;
    const lang = resolveLocale(next.locale);
    let localized: Promise<unknown> = Promise.resolve();
    const done = Promise.all([merchantStyle(next.style), styled]).then(([style]) => {
      if (turn !== applied) return rendered;
      localized = loadLocale(lang).then((locale) => (turn === applied && locale.lang !== root.lang ? show(next, locale, style) : undefined));
      return show(next, loadedLocale(lang) ?? loadedLocale('en')!, style);
    });
    rendered = done;
    applying = done.then(() => localized);
    return done;
  };

  const tokenizeCard = async (): Promise<Outcome<TokenResult | CvcResult>> => {
    await applying;
    let tokenizer: Tokenizer;
    try {
      [tokenizer] = await Promise.all([loadTokenizerOnce(), fields.loadRules()]);
    } catch {
      // The chunks come from the vault: not reaching it now is what the shopper and the merchant hear.
      fields.showProblem('network_error');
      return { ok: false, error: NETWORK_ERROR };
    }
    return tokenizer.tokenize(fields, options);
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
        return void apply(message.options);
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
    fields.submit = () => answer(SHOPPER_SUBMIT_ID);
    document.body.append(fields);
    void apply(accepted.init.options).then(() => {
      post({ type: 'ready' });
      fields.startReporting(post);
      new ResizeObserver(() => post({ type: 'resize', height: Math.ceil(root.getBoundingClientRect().height) })).observe(root);
      // What the first render did not need, while the shopper reads the form.
      void fields.loadRules().catch(() => undefined);
      void loadTokenizerOnce().then((tokenizer) => tokenizer.prepare(options, fields), () => undefined);
    });
  };

  addEventListener('message', onWindowMessage);
  const hello: HelloMessage = { v: PROTOCOL_VERSION, type: 'tessera:hello', channel };
  parent.postMessage(hello, config.parentOrigin);
  // Most cards follow the shopper's browser: its locale starts loading before the init that asks for it.
  void loadLocale(resolveLocale());
  // While the hello goes round, the default form is drawn off the page: the templates are ready when the options come.
  void fields.requestUpdate();
}

const config = readFieldsConfig();
// Without a valid configuration the fields never say hello; the loader then asks the vault why.
if (config) start(config);
