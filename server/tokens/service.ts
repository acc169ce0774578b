import type { AuditSource } from '../audit/audit.ts';
import type { IdempotencyClaim, StoredResponse } from '../idempotency/idempotency.ts';
import type { Merchant } from '../merchants/service.ts';
import type { NetworkTokens } from '../network-tokens/service.ts';
import { BulkTokenUpdate, type BulkItem, type BulkWrite } from './bulk-update.ts';
import { createToken, type CreateTokenInput, type TokenWrite } from './create.ts';
import type { CardServiceDeps } from '../cards/deps.ts';
import { deleteToken, getToken, listTokens } from './queries.ts';
import type { TokenRecord } from '../cards/records.ts';
import { verifyToken } from './verify.ts';

/**
 * Card tokens: turns card ciphertext into a token and keeps the card sealed
 * under a key of its own. Reads never return card data. Each job lives in its
 * own module (create, verify, bulk-update, queries, housekeeping); this is
 * the one object the routes hold.
 */
export class TokenVault {
  readonly #deps: CardServiceDeps & { networkTokens?: NetworkTokens | undefined };
  readonly #bulk: BulkTokenUpdate;

  constructor(deps: CardServiceDeps & { networkTokens?: NetworkTokens | undefined }) {
    this.#deps = deps;
    this.#bulk = new BulkTokenUpdate(deps);
  }

  /** `replayed`: the Idempotency-Key's stored response, which the token's statement found (see `createToken`). */
  create(input: CreateTokenInput, write: TokenWrite): Promise<StoredResponse & { replayed?: boolean }> {
    return createToken(this.#deps, input, write);
  }

  get(merchantId: string, token: string): Promise<TokenRecord> {
    return getToken(this.#deps.db, merchantId, token);
  }

  list(merchantId: string, filter: Parameters<typeof listTokens>[2]): ReturnType<typeof listTokens> {
    return listTokens(this.#deps.db, merchantId, filter);
  }

  delete(merchantId: string, token: string, actor: string, source: AuditSource): Promise<void> {
    return deleteToken(this.#deps, merchantId, token, actor, source);
  }

  verify(merchant: Merchant, token: string, ctx: { actor: string; source: AuditSource; claim: IdempotencyClaim | undefined }): Promise<StoredResponse> {
    return verifyToken(this.#deps, merchant, token, ctx);
  }

  updateMany(merchant: Merchant, items: readonly BulkItem[], write: BulkWrite): Promise<StoredResponse> {
    return this.#bulk.run(merchant, items, write);
  }
}
