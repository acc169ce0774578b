import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';

/** An exact web origin: scheme, host and optional port — no path, query or trailing slash. */
export const OriginSchema = freeText({ max: 255 }).refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}, 'must be an exact origin such as https://shop.example');

const WebhookUrlSchema = freeText({ max: 2048 }).pipe(z.url({ protocol: /^https?$/ }));

/** Shown on the dashboard and in every merchant listing. */
const MerchantName = freeText({ max: 100, trim: true });

export const CreateMerchantSchema = z.strictObject({
  name: MerchantName,
  allowed_origins: z.array(OriginSchema).max(20).default([]),
  unique_tokens: z.boolean().default(false),
  webhook_url: WebhookUrlSchema.nullable().optional(),
});
export type CreateMerchantInput = z.infer<typeof CreateMerchantSchema>;

export const UpdateMerchantSchema = z
  .strictObject({
    name: MerchantName,
    allowed_origins: z.array(OriginSchema).max(20),
    unique_tokens: z.boolean(),
    webhook_url: WebhookUrlSchema.nullable(),
  })
  .partial();
export type UpdateMerchantInput = z.infer<typeof UpdateMerchantSchema>;
