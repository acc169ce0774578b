/** One origin and nothing else: what may follow `frame-ancestors` without adding a source, directive or policy. */
export const SINGLE_ORIGIN = /^(?:https:\/\/(?:[a-z0-9-]+\.)*[a-z0-9-]+|http:\/\/(?:localhost|127\.0\.0\.1)|https?:\/\/\[::1\])(?::[1-9]\d{0,4})?$/;

/** The directives of one Content-Security-Policy header, by name; a repeated name or a second policy (`,`) is kept visible. */
export function cspDirectives(header: string): Array<[name: string, values: string[]]> {
  return header.split(';').map((directive) => {
    const [name = '', ...values] = directive.trim().split(/[ \t]+/);
    return [name, values];
  });
}
