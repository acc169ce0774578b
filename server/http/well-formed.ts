import type { NextFunction, Request, Response } from 'express';
import { VaultError } from '../errors.ts';
import { isPlainName } from './errors.ts';

/**
 * A NUL, or half of a UTF-16 surrogate pair. PostgreSQL refuses NUL in text
 * and jsonb (the request would fail with a 500 after validation), and an
 * unpaired surrogate cannot be encoded as UTF-8 at all (the driver would
 * silently store U+FFFD instead of what was sent). Neither belongs in any
 * parameter, so the vault refuses them at the door, wherever they stand.
 */
const ILL_FORMED = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const isIllFormedText = (text: string): boolean => ILL_FORMED.test(text);

type Path = Array<string | number>;

/**
 * Where the first ill-formed string of a parsed JSON value is: the path of
 * a bad value, or of the object holding a bad key. Iterative, so a deeply
 * nested body cannot overflow the stack.
 */
export function findIllFormedText(root: unknown): { path: Path } | undefined {
  const pending: Array<{ value: unknown; path: Path }> = [{ value: root, path: [] }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (isIllFormedText(value)) return { path };
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) pending.push({ value: value[i], path: [...path, i] });
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.some(([key]) => isIllFormedText(key))) return { path };
      for (let i = entries.length - 1; i >= 0; i--) pending.push({ value: entries[i]![1], path: [...path, entries[i]![0]] });
    }
  }
  return undefined;
}

/** 400 `parameter_invalid` naming the parameter when its name is safe to echo (as `parseInput` does). */
export function illFormedError(path: Path, where: 'body' | 'query'): VaultError {
  const param = path.map(String).map((segment) => (isPlainName(segment) ? segment : '?')).join('.');
  const message = param
    ? `The parameter "${param}" contains a NUL or an unpaired surrogate, which the vault does not accept.`
    : `The request ${where} contains a NUL or an unpaired surrogate, which the vault does not accept.`;
  return new VaultError('parameter_invalid', { message, ...(param ? { param } : {}) });
}

/**
 * Refuses a request whose path segments (as the router will decode them) or
 * query string hold a NUL or an unpaired surrogate, or whose path is not
 * valid percent-encoding, before any route or storage sees it. Bodies are
 * checked by `jsonBody` once parsed.
 */
export function wellFormedRequest() {
  return (req: Request, _res: Response, next: NextFunction) => {
    for (const segment of req.path.split('/')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        throw new VaultError('parameter_invalid', { message: 'The request path is not valid percent-encoded UTF-8.' });
      }
      if (isIllFormedText(decoded)) {
        throw new VaultError('parameter_invalid', {
          message: 'The request path contains a NUL or an unpaired surrogate, which the vault does not accept.',
        });
      }
    }
    const bad = findIllFormedText(req.query);
    if (bad !== undefined) throw illFormedError(bad.path, 'query');
    next();
  };
}
