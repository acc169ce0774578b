import { z } from 'zod';
import { freeText } from '../lib/free-text.ts';

const Text = freeText({ max: 255, pattern: /^[\x20-\x7e\u00a0-\uffff]+$/ });

/** `POST /v1/tokens/{token}/network-token` (api.md). */
export const NetworkTokenRequest = z.strictObject({
  correlation_id: Text.optional(),
  account_id: Text.optional(),
  email: freeText({ max: 254 }).pipe(z.email()).optional(),
  mode: z.enum(['sync', 'async']).default('sync'),
});
export type NetworkTokenInput = z.output<typeof NetworkTokenRequest>;

export const NetworkTokenPath = z.strictObject({ id: freeText({ max: 64, pattern: /^ntok_[A-Za-z0-9]+$/ }) });

/** `POST /v1/sandbox/network-tokens/{id}/lifecycle`: new card details only with `pan_update`, which needs at least one. */
export const LifecycleRequest = z
  .strictObject({
    event: z.enum(['suspend', 'resume', 'delete', 'pan_update']),
    exp_month: z.number().int().min(1).max(12).optional(),
    exp_year: z.number().int().min(2000).max(2100).optional(),
    pan_last4: z.string().regex(/^\d{4}$/).optional(),
  })
  .refine(
    (body) => (body.event === 'pan_update') === (body.exp_month !== undefined || body.exp_year !== undefined || body.pan_last4 !== undefined),
    { message: 'exp_month, exp_year or pan_last4 go with pan_update, and pan_update needs one of them' },
  );
export type LifecycleInput = z.output<typeof LifecycleRequest>;
