/** Messages between the vault and the thread that runs PGlite (see pglite-thread.ts). */

export type PgliteRequest =
  // prepared: run as a named prepared statement (pglite-prepared.ts): set for the vault's function calls only.
  // sentAt: the vault's clock (timeOrigin + now) when sent, with TESSERA_PGLITE_TIMING=1 only (benchmark diagnostics).
  | { id: number; kind: 'query'; sql: string; params: unknown[] | undefined; tx: number | undefined; prepared: boolean; sentAt?: number }
  | { id: number; kind: 'exec'; sql: string; tx: number | undefined }
  | { id: number; kind: 'begin' }
  | { id: number; kind: 'end'; tx: number; commit: boolean }
  | { id: number; kind: 'listen'; channel: string }
  | { id: number; kind: 'unlisten'; channel: string }
  | { id: number; kind: 'close' };

/** What survives of a database error across the thread boundary: enough to map it (SQLSTATE, detail, constraint). */
export interface PgliteErrorShape {
  message: string;
  code: string | undefined;
  detail: string | undefined;
  constraint: string | undefined;
}

export type PgliteReply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: PgliteErrorShape };

/** Sent by the thread, unasked, for each notification committed on a channel the vault listens to. */
export interface PgliteNotification {
  notify: string;
  payload: string;
}
