import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { newWebhookSecret, signWebhook, webhookHeaders, webhookSecretKey } from '../../../server/webhooks/signature.ts';

const now = () => Math.floor(Date.now() / 1000);
const event = (body: object = { id: 'evt_1', type: 'payment.captured', data: { object: { id: 'pay_1', amount: 4250 } } }) => ({
  id: 'evt_4bX9kQ2mR7tY1wZ3nP5sV8',
  timestamp: now(),
  body: JSON.stringify(body),
});

describe('webhook signatures', () => {
  it('makes secrets of whsec_ and the base64 of 32 random bytes, each different', () => {
    const secrets = Array.from({ length: 50 }, newWebhookSecret);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(webhookSecretKey(secret)).toHaveLength(32);
    }
    expect(new Set(secrets).size).toBe(50);
  });

  it('signs so that the standardwebhooks package verifies the message', () => {
    const secret = newWebhookSecret();
    const message = event();
    const headers = webhookHeaders(message, [secret]);
    expect(new Webhook(secret).verify(message.body, headers)).toEqual(JSON.parse(message.body));
  });

  it('signs exactly as the standardwebhooks package does', () => {
    for (let i = 0; i < 20; i++) {
      const secret = newWebhookSecret();
      const message = { ...event({ n: i, text: 'Zoë ✓ 💳 "quoted" \\ \u2028' }), timestamp: 1_700_000_000 + i };
      expect(signWebhook(message, secret)).toBe(new Webhook(secret).sign(message.id, new Date(message.timestamp * 1000), message.body));
    }
  });

  it('puts one signature per live secret in the header, each verifying on its own during a rotation', () => {
    const [oldSecret, newSecret, otherSecret] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()];
    const message = event();
    const headers = webhookHeaders(message, [newSecret, oldSecret]);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
    expect(headers['webhook-signature'].split(' ')).toEqual([signWebhook(message, newSecret), signWebhook(message, oldSecret)]);
    expect(new Webhook(oldSecret).verify(message.body, headers)).toEqual(JSON.parse(message.body));
    expect(new Webhook(newSecret).verify(message.body, headers)).toEqual(JSON.parse(message.body));
    expect(() => new Webhook(otherSecret).verify(message.body, headers)).toThrow(WebhookVerificationError);
  });

  it('sends the event id and the timestamp in seconds', () => {
    const message = event();
    const headers = webhookHeaders(message, [newWebhookSecret()]);
    expect(headers['webhook-id']).toBe(message.id);
    expect(headers['webhook-timestamp']).toBe(String(message.timestamp));
  });

  it.each([
    ['another body', (m: ReturnType<typeof event>) => ({ ...m, body: m.body.replace('4250', '4251') })],
    ['another id', (m: ReturnType<typeof event>) => ({ ...m, id: 'evt_other' })],
    ['another timestamp', (m: ReturnType<typeof event>) => ({ ...m, timestamp: m.timestamp + 1 })],
  ])('makes a signature that does not verify for %s', (_what, change) => {
    const secret = newWebhookSecret();
    const message = event();
    const headers = webhookHeaders(message, [secret]);
    const changed = change(message);
    expect(() =>
      new Webhook(secret).verify(changed.body, { ...headers, 'webhook-id': changed.id, 'webhook-timestamp': String(changed.timestamp) }),
    ).toThrow(WebhookVerificationError);
  });

  it.each([
    ['no prefix', 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0'],
    ['too short a key (16 bytes)', `whsec_${Buffer.alloc(16, 1).toString('base64')}`],
    ['too long a key (65 bytes)', `whsec_${Buffer.alloc(65, 1).toString('base64')}`],
    ['not base64', 'whsec_not*base64*at*all*not*base64*at*all*!!'],
    ['base64url', `whsec_${Buffer.alloc(32, 0xfb).toString('base64url')}`],
    ['an empty secret', 'whsec_'],
  ])('refuses a secret with %s as a programming error', (_what, secret) => {
    expect(() => signWebhook(event(), secret)).toThrow(TypeError);
  });

  it.each([
    ['empty', ''],
    ['with a dot, which would blur the signed content', 'evt.1'],
    ['with a line break', 'evt_1\r\nx-injected: 1'],
    ['too long', `evt_${'a'.repeat(125)}`],
  ])('refuses a message id that is %s', (_what, id) => {
    expect(() => signWebhook({ ...event(), id }, newWebhookSecret())).toThrow(TypeError);
  });

  it('refuses to sign with no secret at all', () => {
    expect(() => webhookHeaders(event(), [])).toThrow(TypeError);
  });

  it('refuses a timestamp that is not whole seconds', () => {
    expect(() => signWebhook({ ...event(), timestamp: Date.now() / 1000 }, newWebhookSecret())).toThrow(TypeError);
  });
});
