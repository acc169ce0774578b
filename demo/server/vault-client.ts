import { z } from 'zod';

/** How long the shop waits for the vault before telling the shopper to try again. */
const VAULT_TIMEOUT_MS = 5_000;

/** The part of the vault's token object the shop uses; the vault sends more (fingerprint, customer, dates). */
const TokenSchema = z.object({
  token: z.string(),
  reusable: z.boolean(),
  card: z.object({
    brand: z.string(),
    last4: z.string(),
    exp_month: z.number().int(),
    exp_year: z.number().int(),
  }),
});
export type VaultToken = z.infer<typeof TokenSchema>;

const ErrorBodySchema = z.object({ error: z.object({ code: z.string() }) });

/** The vault answered, but not with what was asked for: an error body's `code`, or `unexpected_response`. */
export class VaultRequestError extends Error {
  override readonly name = 'VaultRequestError';

  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`The vault answered ${status} ${code}.`);
  }
}

/** The vault could not be reached or did not answer within `VAULT_TIMEOUT_MS`. */
export class VaultUnreachableError extends Error {
  override readonly name = 'VaultUnreachableError';

  constructor(options: { cause: unknown }) {
    super('The vault could not be reached or did not answer in time.', options);
  }
}

/** The shop server's side of the vault API: calls made with the secret key, which never leaves this process. */
export class VaultClient {
  readonly #vaultUrl: string;
  readonly #secretKey: string;

  constructor(options: { vaultUrl: string; secretKey: string }) {
    this.#vaultUrl = options.vaultUrl;
    this.#secretKey = options.secretKey;
  }

  /** `GET /v1/tokens/{token}`: what the vault knows about a token the shopper's browser handed over. */
  async readToken(token: string): Promise<VaultToken> {
    const { status, body } = await this.#get(`/v1/tokens/${encodeURIComponent(token)}`);
    if (status === 200) {
      const parsed = TokenSchema.safeParse(body);
      if (parsed.success) return parsed.data;
    }
    const error = ErrorBodySchema.safeParse(body);
    throw new VaultRequestError(status, status !== 200 && error.success ? error.data.error.code : 'unexpected_response');
  }

  async #get(path: string): Promise<{ status: number; body: unknown }> {
    let status: number;
    let text: string;
    try {
      // The body is read under the same deadline: a vault that stalls mid-answer is as unreachable as a silent one.
      const response = await fetch(new URL(path, this.#vaultUrl), {
        headers: { authorization: `Bearer ${this.#secretKey}`, accept: 'application/json' },
        signal: AbortSignal.timeout(VAULT_TIMEOUT_MS),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw new VaultUnreachableError({ cause: error });
    }
    try {
      return { status, body: JSON.parse(text) };
    } catch {
      return { status, body: undefined };
    }
  }
}
