/**
 * What the vault embeds in the fields document (as a JSON data block, id
 * `tessera-config`) so the iframe can start without extra round trips.
 * The vault only renders working fields when `parentOrigin` is one of the
 * merchant's `allowed_origins`; the iframe posts to that origin and no other.
 * Nothing in it is particular to one visit, so the document can be cached;
 * the fields open their session (`POST /v1/sessions`) after `ready`.
 */
export interface FieldsDocumentConfig {
  publishableKey: string;
  /** The merchant page's exact origin, confirmed by the vault. */
  parentOrigin: string;
  /** The vault's current encryption keys (the first one is used). */
  jwks: { keys: Array<Record<string, string>> };
}

export const FIELDS_CONFIG_ELEMENT_ID = 'tessera-config';
