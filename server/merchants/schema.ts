import { z } from 'zod';
import { canonicalOrigin } from './origin.ts';

/**
 * An exact web origin (scheme, host, optional port), returned as browsers
 * serialize it; see `canonicalOrigin` for what is refused and why.
 */
export const OriginSchema = z
  .string()
  .max(255)
  .transform((value, ctx) => {
    const origin = canonicalOrigin(value);
    if (origin === undefined) {
      ctx.issues.push({
        code: 'custom',
        input: value,
        message: 'must be an exact origin such as https://shop.example (http: only for localhost)',
      });
      return z.NEVER;
    }
    return origin;
  });

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
