export { classifyAddress, type AddressVerdict } from './addresses.ts';
export { assertWebhookUrlAllowed, resolveWebhookHost, systemResolver, type CheckedAddress, type HostResolution, type RegistrationCheckOptions, type Resolver } from './resolve.ts';
export { parseRetryAfter, RETRY_AFTER_MAX_SECONDS } from './retry-after.ts';
export { WebhookSender, type DeliveryError, type DeliveryResult, type WebhookMessage, type WebhookSenderOptions } from './sender.ts';
export { newWebhookSecret, signWebhook, webhookHeaders, webhookSecretKey, type SignedMessage } from './signature.ts';
export {
  checkWebhookUrl,
  REFUSAL_MESSAGES,
  WEBHOOK_URL_MAX_LENGTH,
  webhookUrlSchema,
  type WebhookUrlCheck,
  type WebhookUrlPolicy,
  type WebhookUrlRefusal,
} from './url-policy.ts';
