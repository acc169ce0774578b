import type { KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { parseCardPlaintext } from '../cards/card.ts';
import { VaultError } from '../errors.ts';
import { decryptCardCiphertext } from './card-ciphertext.ts';
import type { DecryptReply, DecryptRequest } from './card-decrypt-pool.ts';

/**
 * A thread of the card decrypt pool: opens card JWEs that already passed
 * `cardCiphertextKey` on the main thread, and validates the plaintext. It
 * keeps the transport keys it was sent (by kid) until told to forget them,
 * writes no log, and answers a refusal as its code, fixed message and param.
 */
const port = parentPort!;
const keys = new Map<string, KeyObject>();

port.on('message', (request: DecryptRequest) => {
  if (request.kind === 'forget') {
    keys.clear();
    return;
  }
  if (request.key !== undefined) keys.set(request.kid, request.key);
  void open(request).then((reply) => port.postMessage(reply));
});

async function open(request: Extract<DecryptRequest, { kind: 'open' }>): Promise<DecryptReply> {
  try {
    const key = keys.get(request.kid);
    if (key === undefined) return { id: request.id, ok: false, unexpected: 'no key for this kid in the worker' };
    const card = parseCardPlaintext(decryptCardCiphertext(request.jwe, key, request.param), request.param);
    return { id: request.id, ok: true, card };
  } catch (error) {
    if (error instanceof VaultError) return { id: request.id, ok: false, refusal: { code: error.code, message: error.message, param: error.param } };
    // Only the error's name: a message could quote what it failed on.
    return { id: request.id, ok: false, unexpected: error instanceof Error ? error.name : 'thrown' };
  }
}
