import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { WEBHOOK_PATH } from './config.ts';
import type { Shop } from './context.ts';
import { errorHandler, ShopError } from './errors.ts';
import { receiveEvent, TesseraEventSchema } from './webhook-events.ts';

/** How far a signature's timestamp may be from now (the Standard Webhooks libraries' 5 minutes): older is a replay. */
const TOLERANCE_SECONDS = 5 * 60;
/** An event is a payment or token object in an envelope: a few kilobytes. */
const BODY_LIMIT = '256kb';

const SignedHeaders = z.object({
  'webhook-id': z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  'webhook-timestamp': z.string().regex(/^\d{1,12}$/),
  'webhook-signature': z.string().min(1).max(4096),
});

const refused = (status: number, code: string, message: string) => new ShopError(status, code, message);

/**
 * The shop's webhook receiver, in a fixed order: the raw body and the three
 * Standard Webhooks headers, the timestamp (a stale one is a replay), the
 * signature (with the `standardwebhooks` package, against the secret the
 * shop holds), then the event's shape. Anything refused is stored nowhere;
 * an event that passes is stored once by its `webhook-id` and acted on
 * (`receiveEvent`), and the answer is 204 at once, for a first delivery and
 * a repeated one alike. Bodies and secrets are never logged.
 */
export function webhookRoutes(shop: Shop): Router {
  const { db, webhookEndpoint, log } = shop;
  const router = Router();

  router.post(WEBHOOK_PATH, express.raw({ type: () => true, limit: BODY_LIMIT }), async (req: Request, res) => {
    // Read as bytes: the signature is over the body exactly as sent.
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const headers = SignedHeaders.safeParse(req.headers);
    if (!headers.success) {
      log.warn({ reason: 'unsigned' }, 'webhook refused');
      throw refused(400, 'webhook_unsigned', 'A webhook needs the webhook-id, webhook-timestamp and webhook-signature headers.');
    }
    const verifiers = webhookEndpoint.verifiers();
    if (verifiers.length === 0) {
      log.warn({ reason: 'no_secret' }, 'webhook refused');
      throw refused(503, 'webhooks_not_ready', 'The shop holds no webhook secret yet.');
    }
    if (Math.abs(Date.now() / 1000 - Number(headers.data['webhook-timestamp'])) > TOLERANCE_SECONDS) {
      log.warn({ reason: 'stale' }, 'webhook refused');
      throw refused(401, 'webhook_stale', 'The webhook’s timestamp is more than 5 minutes from now.');
    }
    const signed = verifiers.some((webhook) => {
      try {
        webhook.verify(body, headers.data, { jsonParse: false });
        return true;
      } catch {
        return false;
      }
    });
    if (!signed) {
      log.warn({ reason: 'signature' }, 'webhook refused');
      throw refused(401, 'webhook_signature_invalid', 'The webhook’s signature does not match.');
    }

    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    const event = TesseraEventSchema.safeParse(json);
    // Signed, so the vault sent it: answered 400 so the delivery shows it failed, and the event comes again once the shop understands it.
    if (!event.success || event.data.id !== headers.data['webhook-id']) {
      log.error({ webhook_event: headers.data['webhook-id'] }, 'signed webhook the shop cannot read');
      throw refused(400, 'webhook_event_invalid', 'The webhook body is not an event with the webhook-id as its id.');
    }
    const received = await receiveEvent(db, event.data);
    log.info({ webhook_event: event.data.id, type: event.data.type, duplicate: received.duplicate, effect: received.effect }, 'webhook event received');
    res.status(204).end();
  });
  router.use(errorHandler(log));

  return router;
}
