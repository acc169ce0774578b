/**
 * The events a merchant may receive (api.md, "Events and webhooks"): the
 * state changes it may act on. Each is an audit entry with this type and the
 * object as the change left it; reads and failures stay audit-only.
 */
export const EVENT_TYPES = [
  'token.created',
  'token.updated',
  'token.deleted',
  'payment.authorized',
  'payment.captured',
  'payment.voided',
  'payment.refunded',
  'payment.declined',
  'token_batch.completed',
  'network_token.created',
  'network_token.updated',
  'payment_link.created',
  'payment_link.paid',
  'payment_link.expired',
  'payment_batch.completed',
  'subscription.created',
  'subscription.charged',
  'subscription.charge_failed',
  'subscription.canceled',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/**
 * An endpoint's subscription: an event type, a group of them (`payment.*`),
 * or everything (`*`). Patterns are checked when an endpoint is saved, so a
 * typo is refused instead of silently matching nothing.
 */
export function isEventPattern(pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return EVENT_TYPES.some((type) => type.startsWith(pattern.slice(0, -1)));
  return (EVENT_TYPES as readonly string[]).includes(pattern);
}

/** Whether an event of `type` goes to an endpoint subscribed to `patterns` (the same rule the delivery trigger applies in SQL). */
export function matchesEventPatterns(type: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => pattern === '*' || pattern === type || (pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1))));
}
