/**
 * zod/mini schemas for every message the fields accept, typed against the
 * protocol in `shared/messages.ts` so the two cannot drift apart. Messages are
 * strict (an unknown key rejects the message); card options drop unknown keys
 * so an older fields build keeps working with a newer loader.
 */
import * as z from 'zod/mini';
import { CARD_BRANDS } from '../shared/brands.ts';
import { FIELD_NAMES } from '../shared/constants.ts';
import { PROTOCOL_VERSION, type CardOptions, type InitMessage, type ParentToFrameMessage } from '../shared/messages.ts';
import type { CardStyle } from '../shared/styles.ts';

const cardOptions: z.ZodMiniType<CardOptions> = z.object({
  mode: z.optional(z.literal(['payment', 'signup', 'cvc', 'moto'])),
  saveCard: z.optional(z.literal(['optional', 'always', 'never'])),
  customer: z.optional(z.string()),
  fields: z.optional(z.object({ name: z.optional(z.boolean()), postalCode: z.optional(z.boolean()) })),
  // Checked entry by entry by `sanitizeStyle`, which reports what it drops.
  style: z.optional(z.custom<CardStyle>()),
  locale: z.optional(z.string()),
  colorScheme: z.optional(z.literal(['light', 'dark'])),
  token: z.optional(z.string()),
  brand: z.optional(z.literal(CARD_BRANDS)),
  last4: z.optional(z.custom<string>((value) => typeof value === 'string' && /^\d{4}$/.test(value))),
});

export const initMessage: z.ZodMiniType<InitMessage> = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('tessera:init'),
  channel: z.string(),
  options: cardOptions,
});

/** One strict schema per port message type; `parsePortMessage` picks it by `type`, a discriminated union in effect. */
const portMessages: { [T in ParentToFrameMessage['type']]: z.ZodMiniType<Extract<ParentToFrameMessage, { type: T }>> } = {
  update: z.strictObject({ type: z.literal('update'), options: cardOptions }),
  tokenize: z.strictObject({ type: z.literal('tokenize'), id: z.number() }),
  focus: z.strictObject({ type: z.literal('focus'), field: z.optional(z.literal(FIELD_NAMES)) }),
  clear: z.strictObject({ type: z.literal('clear') }),
};

/**
 * A message from the merchant page's port, or `undefined` when it is not one
 * of the protocol's. Looking the schema up by `type` costs far less bundle
 * than zod's `discriminatedUnion`, which the fields' size budget cannot carry.
 */
export function parsePortMessage(data: unknown): ParentToFrameMessage | undefined {
  const type = (data as { type?: unknown } | null)?.type;
  const schema = typeof type === 'string' && Object.hasOwn(portMessages, type) ? portMessages[type as ParentToFrameMessage['type']] : undefined;
  const parsed = schema?.safeParse(data);
  return parsed?.success ? parsed.data : undefined;
}
