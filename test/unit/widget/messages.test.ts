import { describe, expect, it } from 'vitest';
import { acceptInit, type ExpectedParent } from '../../../widget/fields/handshake.ts';
import { initMessage, parsePortMessage } from '../../../widget/fields/messages.ts';

const init = { v: 1, type: 'tessera:init', channel: 'c-1', options: { mode: 'payment', saveCard: 'optional', locale: 'fr', colorScheme: 'dark' } };

describe('init message schema', () => {
  it('accepts a well-formed init', () => {
    expect(initMessage.safeParse(init).success).toBe(true);
  });

  it('drops unknown card options rather than refusing the init', () => {
    const parsed = initMessage.safeParse({ ...init, options: { mode: 'signup', future: true } });
    expect(parsed.success && parsed.data.options).toEqual({ mode: 'signup' });
  });

  it.each([
    ['an extra key', { ...init, port: 'x' }],
    ['another protocol version', { ...init, v: 2 }],
    ['another type', { ...init, type: 'tessera:hello' }],
    ['no channel', { v: 1, type: 'tessera:init', options: {} }],
    ['an unknown mode', { ...init, options: { mode: 'refund' } }],
    ['an unknown colour scheme', { ...init, options: { colorScheme: 'sepia' } }],
    ['last 4 that are not four digits', { ...init, options: { mode: 'cvc', last4: '42424' } }],
    ['a string', 'tessera:init'],
    ['null', null],
  ])('refuses an init with %s', (_name, data) => {
    expect(initMessage.safeParse(data).success).toBe(false);
  });
});

describe('port message schemas', () => {
  it.each([
    { type: 'update', options: { locale: 'ar' } },
    { type: 'tokenize', id: 3 },
    { type: 'focus', field: 'cvc' },
    { type: 'focus' },
    { type: 'clear' },
  ])('accepts %j', (message) => {
    expect(parsePortMessage(message)).toEqual(message);
  });

  it.each([
    ['a string id', { type: 'tokenize', id: '3' }],
    ['an extra key', { type: 'tokenize', id: 3, card: '4242424242424242' }],
    ['an unknown field', { type: 'focus', field: 'password' }],
    ['an unknown type', { type: 'reveal' }],
    ['an inherited property as type', { type: 'toString' }],
    ['__proto__ as type', JSON.parse('{"type":"__proto__"}')],
    ['no type', { id: 3 }],
    ['null', null],
    ['a number', 7],
  ])('refuses a message with %s', (_name, message) => {
    expect(parsePortMessage(message)).toBeUndefined();
  });
});

describe('handshake checks', () => {
  const parentWindow = { name: 'parent' } as unknown as MessageEventSource;
  const expected: ExpectedParent = { origin: 'https://shop.example', window: parentWindow, channel: 'c-1' };
  const event = (overrides: Partial<{ origin: string; source: unknown; data: unknown; ports: MessagePort[] }> = {}) => {
    const { port2 } = new MessageChannel();
    return { origin: 'https://shop.example', source: parentWindow, data: init, ports: [port2], ...overrides } as unknown as MessageEvent;
  };

  it('accepts an init from the parent window at the confirmed origin on our channel', () => {
    const accepted = acceptInit(event(), expected);
    expect(accepted?.init.channel).toBe('c-1');
    accepted?.port.close();
  });

  it.each([
    ['another origin', { origin: 'https://evil.example' }],
    ['a look-alike origin', { origin: 'https://shop.example.evil.example' }],
    ['another window', { source: { name: 'other' } }],
    ['a forged shape', { data: { ...init, type: 'tessera:hello' } }],
    ['another channel', { data: { ...init, channel: 'c-2' } }],
    ['no port', { ports: [] }],
  ])('ignores an init from %s', (_name, overrides) => {
    expect(acceptInit(event(overrides), expected)).toBeUndefined();
  });
});
