import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';
import { canonicalOrigin } from './origin.ts';

/**
 * An exact web origin (scheme, host, optional port), returned as browsers
 * serialize it; see `canonicalOrigin` for what is refused and why.
 */
export const OriginSchema = freeText({ max: 255 }).transform((value, ctx) => {
  const origin = canonicalOrigin(value);
  if (origin === undefined) {
    ctx.issues.push({ code: 'custom', input: value, message: 'must be an exact origin such as https://shop.example (http: only for localhost)' });
    return z.NEVER;
  }
  return origin;
});

const WebhookUrlSchema = freeText({ max: 2048 }).pipe(z.url({ protocol: /^https?$/ }));

/** Shown on the dashboard and in every merchant listing. */
const MerchantName = freeText({ max: 100, trim: true });

export const CreateMerchantSchema = z.strictObject({
  name: MerchantName,
  allowed_origins: z.array(OriginSchema).max(20).default([]),
  unique_tokens: z.boolean().default(false),
  network_tokens: z.boolean().default(false),
  webhook_url: WebhookUrlSchema.nullable().optional(),
});
export type CreateMerchantInput = z.infer<typeof CreateMerchantSchema>;

export const UpdateMerchantSchema = z
  .strictObject({
    name: MerchantName,
    allowed_origins: z.array(OriginSchema).max(20),
    unique_tokens: z.boolean(),
    network_tokens: z.boolean(),
    webhook_url: WebhookUrlSchema.nullable(),
  })
  .partial();
export type UpdateMerchantInput = z.infer<typeof UpdateMerchantSchema>;
