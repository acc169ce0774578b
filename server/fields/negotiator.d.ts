/** The part of `negotiator` (jshttp) the vault uses; its published types predate the `preferred` option. */
declare module 'negotiator' {
  export default class Negotiator {
    constructor(request: { headers: Record<string, string | string[] | undefined> });
    /** The acceptable encodings of `available`, best first; ties in the client's quality go to the order of `preferred`. */
    encodings(available: readonly string[], options?: { preferred?: readonly string[] }): string[];
  }
}
