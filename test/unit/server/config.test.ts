import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../server/config.ts';

describe('the vault configuration', () => {
  it('gives the HTTP server timeouts that cut slow clients off, unless the environment says otherwise', () => {
    expect(loadConfig({}).http).toEqual({ headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, idleMs: 60_000 });
    expect(
      loadConfig({
        TESSERA_HTTP_HEADERS_TIMEOUT_MS: '500',
        TESSERA_HTTP_REQUEST_TIMEOUT_MS: '700',
        TESSERA_HTTP_KEEP_ALIVE_TIMEOUT_MS: '900',
        TESSERA_HTTP_IDLE_TIMEOUT_MS: '1100',
      }).http,
    ).toEqual({ headersMs: 500, requestMs: 700, keepAliveMs: 900, idleMs: 1100 });
  });

  it.each([
    [{ TESSERA_HTTP_HEADERS_TIMEOUT_MS: '0' }, 'TESSERA_HTTP_HEADERS_TIMEOUT_MS'],
    [{ TESSERA_HTTP_IDLE_TIMEOUT_MS: 'soon' }, 'TESSERA_HTTP_IDLE_TIMEOUT_MS'],
    [{ TESSERA_HTTP_HEADERS_TIMEOUT_MS: '5000', TESSERA_HTTP_REQUEST_TIMEOUT_MS: '1000' }, 'TESSERA_HTTP_HEADERS_TIMEOUT_MS'],
  ])('refuses %j with a message naming %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(variable);
  });
});
