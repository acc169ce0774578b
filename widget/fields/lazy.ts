/**
 * Parts of the fields that a card may not need before `ready`, each its own
 * chunk: the typing rules and the tokenizer (encryption and the calls to the
 * vault), loaded after `ready`; and the merchant's style, loaded before the
 * first render of a card that has one. Each loads once; a load that failed
 * (the network) is tried again on the next call.
 */
export function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    (loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    }));
}

export const loadRules = once(() => import('./rules.ts'));
export const loadTokenizer = once(() => import('./tokenizer.ts'));
export const loadMerchantStyle = once(() => import('./merchant-style.ts'));
