import { z } from 'zod';

/** An exact web origin: scheme, host and optional port — no path, query or trailing slash. */
export const OriginSchema = z
  .string()
  .max(255)
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
    } catch {
      return false;
    }
  }, 'must be an exact origin such as https://shop.example');

const WebhookUrlSchema = z.url({ protocol: /^https?$/ }).max(2048);

export const CreateMerchantSchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  allowed_origins: z.array(OriginSchema).max(20).default([]),
  unique_tokens: z.boolean().default(false),
  webhook_url: WebhookUrlSchema.nullable().optional(),
});
export type CreateMerchantInput = z.infer<typeof CreateMerchantSchema>;

export const UpdateMerchantSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(100),
    allowed_origins: z.array(OriginSchema).max(20),
    unique_tokens: z.boolean(),
    webhook_url: WebhookUrlSchema.nullable(),
  })
  .partial();
export type UpdateMerchantInput = z.infer<typeof UpdateMerchantSchema>;
