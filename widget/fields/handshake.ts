/**
 * The fields' side of the handshake: the one window message they accept is
 * `tessera:init`, and only after every check below, in this order.
 */
import type { InitMessage } from '../shared/messages.ts';
import { initMessage } from './messages.ts';

export interface ExpectedParent {
  /** The parent origin the vault confirmed for this document. */
  origin: string;
  window: MessageEventSource | null;
  /** The channel id from this frame's URL hash. */
  channel: string;
}

/** The init message and the port it transfers, or `undefined` (the message is then ignored). */
export function acceptInit(event: MessageEvent, expected: ExpectedParent): { init: InitMessage; port: MessagePort } | undefined {
  if (event.origin !== expected.origin || event.source !== expected.window) return undefined;
  const parsed = initMessage.safeParse(event.data);
  if (!parsed.success || parsed.data.channel !== expected.channel) return undefined;
  const port = event.ports[0];
  return port && event.ports.length === 1 ? { init: parsed.data, port } : undefined;
}
