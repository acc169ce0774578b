/**
 * The configuration the vault embeds in the fields document. Nothing starts
 * unless it is present and well formed: the fields must know for certain
 * which parent origin they may talk to.
 */
import * as z from 'zod/mini';
import { FIELDS_CONFIG_ELEMENT_ID, type FieldsDocumentConfig } from '../shared/fields-config.ts';

/** The vault's encryption key as the fields use it: P-256 for ECDH-ES. */
export interface VaultEncryptionKey {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
}

export interface FieldsConfig extends Omit<FieldsDocumentConfig, 'jwks'> {
  jwks: { keys: [VaultEncryptionKey, ...VaultEncryptionKey[]] };
}

const origin = z.custom<string>((value) => {
  try {
    return typeof value === 'string' && new URL(value).origin === value;
  } catch {
    return false;
  }
});

const encryptionKey = z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: z.string(), y: z.string(), kid: z.string() });

const fieldsConfig: z.ZodMiniType<FieldsConfig> = z.object({
  publishableKey: z.string(),
  parentOrigin: origin,
  // Only the first key is used; the others are the vault's business (rotation).
  jwks: z.object({ keys: z.custom<FieldsConfig['jwks']['keys']>((keys) => Array.isArray(keys) && encryptionKey.safeParse(keys[0]).success) }),
});

/** The embedded configuration, or `undefined` if it is missing or malformed. */
export function readFieldsConfig(doc: Document = document): FieldsConfig | undefined {
  try {
    const parsed = fieldsConfig.safeParse(JSON.parse(doc.getElementById(FIELDS_CONFIG_ELEMENT_ID)?.textContent ?? ''));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
