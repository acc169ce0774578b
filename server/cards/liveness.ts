/**
 * Whether a stored card (a row of `tokens`) can be read or still charged, as
 * SQL conditions on a query over `tokens`. The rules themselves live once, in
 * server/storage/functions/token_readable.sql and token_chargeable.sql, which
 * the vault's other SQL functions call too.
 */
export const READABLE = 'tessera_token_readable(tokens)';
export const CHARGEABLE = 'tessera_token_chargeable(tokens)';
