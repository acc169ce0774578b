import creditCardType from 'credit-card-type';

/**
 * A brand's prefix as credit-card-type matches it on a whole number: the
 * first `length` digits, read as a number, within [min, max]. The library
 * compares a number's first digits with these and with nothing else, so on
 * a number at least as long as its longest prefix its answer depends on
 * those first digits alone.
 */
export interface PrefixRule {
  length: number;
  min: number;
  max: number;
}

/** Every brand's prefixes, from credit-card-type's own table. */
export const BRAND_PREFIX_RULES: readonly PrefixRule[] = Object.values(creditCardType.types).flatMap((type) =>
  creditCardType.getTypeInfo(type).patterns.map((pattern) => {
    const [min, max] = Array.isArray(pattern) ? (pattern as [number, number]) : [pattern, pattern];
    const length = String(min).length;
    // credit-card-type compares the bound cut to the prefix's length.
    return { length, min, max: Number(String(max).slice(0, length)) };
  }),
);

/**
 * The brands' longer prefixes (5–8 digits) by the 4-digit prefixes they
 * start within, in the table's order. Under any other 4-digit prefix, the
 * first four digits decide credit-card-type's answer.
 */
export const LONGER_RULES_BY_PREFIX4: ReadonlyMap<number, readonly PrefixRule[]> = (() => {
  const longer = new Map<number, PrefixRule[]>();
  for (const rule of BRAND_PREFIX_RULES.filter((r) => r.length > 4)) {
    const scale = 10 ** (rule.length - 4);
    for (let prefix = Math.floor(rule.min / scale); prefix <= Math.floor(rule.max / scale); prefix++) {
      longer.set(prefix, [...(longer.get(prefix) ?? []), rule]);
    }
  }
  return longer;
})();
