import { tokenRecordOf } from '../cards/records.ts';
import { paymentBatchBody, type PaymentBatchRecord } from '../payment-batches/serialize.ts';
import { paymentLinkBody, type PaymentLinkRecord } from '../payment-links/serialize.ts';
import { paymentBody } from '../payments/serialize.ts';
import type { PaymentRecord } from '../payments/service.ts';
import { subscriptionRecordOf } from '../subscriptions/records.ts';
import { subscriptionBody } from '../subscriptions/serialize.ts';
import { tokenBody } from '../tokens/serialize.ts';
import { networkTokenBody, type NetworkTokenRecord } from '../network-tokens/serialize.ts';
import type { EventType } from './types.ts';

/** An event as it is stored: an audit entry with a type and the vault's record of the object after the change. */
export interface StoredEvent {
  id: string;
  event_type: EventType;
  data: unknown;
  created_at: Date;
}

/**
 * The event as the API and webhooks show it:
 * `{"id","object":"event","type","created_at","data":{"object":{…}}}`, the
 * object in its API shape (the token or payment object). Rendered from the
 * stored record every time, so every delivery of one event is the same JSON.
 */
export function eventBody(event: StoredEvent) {
  return {
    id: event.id,
    object: 'event' as const,
    type: event.event_type,
    created_at: event.created_at.toISOString(),
    data: { object: eventObject(event.event_type, event.data) },
  };
}

function eventObject(type: EventType, data: unknown): unknown {
  const record = (typeof data === 'string' ? JSON.parse(data) : data) as Record<string, unknown>;
  if (type.startsWith('token.')) return tokenBody(tokenRecordOf(record));
  if (type.startsWith('payment.')) return paymentBody(paymentRecordOf(record));
  if (type.startsWith('network_token.')) return networkTokenBody(record as unknown as NetworkTokenRecord);
  if (type.startsWith('payment_link.')) return paymentLinkBody(record as unknown as PaymentLinkRecord, { asStored: true });
  if (type.startsWith('payment_batch.')) return paymentBatchBody(record as unknown as PaymentBatchRecord);
  if (type.startsWith('subscription.')) return subscriptionBody(subscriptionRecordOf(record));
  return record;
}

function paymentRecordOf(record: Record<string, unknown>): PaymentRecord {
  // Payments recorded before network tokens went on the card number.
  return { ...(record as unknown as PaymentRecord), credential: record['credential'] === 'network_token' ? 'network_token' : 'pan', created_at: new Date(String(record['created_at'])), updated_at: new Date(String(record['updated_at'])) };
}
