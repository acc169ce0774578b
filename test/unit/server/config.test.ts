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

  it('polls for background jobs every second and leases them for 30 s, unless the environment says otherwise', () => {
    expect(loadConfig({}).jobs).toEqual({ pollMs: 1000, leaseMs: 30_000 });
    expect(loadConfig({ TESSERA_JOB_POLL_MS: '100', TESSERA_JOB_LEASE_MS: '2000' }).jobs).toEqual({ pollMs: 100, leaseMs: 2000 });
  });

  it('holds 256 background network tokens at the networks and 4,096 waiting per process, unless the environment says otherwise', () => {
    expect(loadConfig({}).networkTokenBackground).toEqual({ concurrency: 256, maxWaiting: 4096 });
    expect(loadConfig({ TESSERA_NETWORK_TOKEN_CONCURRENCY: '16', TESSERA_NETWORK_TOKEN_MAX_WAITING: '0' }).networkTokenBackground).toEqual({
      concurrency: 16,
      maxWaiting: 0,
    });
  });

  it.each([
    [{ TESSERA_JOB_LEASE_MS: '50' }, 'TESSERA_JOB_LEASE_MS'],
    [{ TESSERA_JOB_POLL_MS: 'often' }, 'TESSERA_JOB_POLL_MS'],
    [{ TESSERA_NETWORK_TOKEN_CONCURRENCY: '0' }, 'TESSERA_NETWORK_TOKEN_CONCURRENCY'],
    [{ TESSERA_NETWORK_TOKEN_MAX_WAITING: '-1' }, 'TESSERA_NETWORK_TOKEN_MAX_WAITING'],
    [{ TESSERA_HTTP_HEADERS_TIMEOUT_MS: '0' }, 'TESSERA_HTTP_HEADERS_TIMEOUT_MS'],
    [{ TESSERA_HTTP_IDLE_TIMEOUT_MS: 'soon' }, 'TESSERA_HTTP_IDLE_TIMEOUT_MS'],
    [{ TESSERA_HTTP_HEADERS_TIMEOUT_MS: '5000', TESSERA_HTTP_REQUEST_TIMEOUT_MS: '1000' }, 'TESSERA_HTTP_HEADERS_TIMEOUT_MS'],
  ])('refuses %j with a message naming %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(variable);
  });

  it.each([
    ['unset', undefined, false],
    ['0', '0', false],
    ['false', 'false', false],
    ['a number of hops', '2', 2],
    ['an address', '10.0.0.7', ['10.0.0.7']],
    ['subnets and names, spaces trimmed', '10.0.0.0/8, fd00::/8,loopback', ['10.0.0.0/8', 'fd00::/8', 'loopback']],
    ['an IPv6 address', '2001:db8::1', ['2001:db8::1']],
  ])('trusts no proxy unless TESSERA_TRUST_PROXY names hops or proxies: %s', (_name, value, trusted) => {
    expect(loadConfig(value === undefined ? {} : { TESSERA_TRUST_PROXY: value }).trustProxy).toEqual(trusted);
  });

  it.each([['true'], ['everyone'], ['10.0.0.0/33'], ['127.1'], ['10.0.0.1/8/8'], ['11']])('refuses TESSERA_TRUST_PROXY=%s', (value) => {
    expect(() => loadConfig({ TESSERA_TRUST_PROXY: value })).toThrow('TESSERA_TRUST_PROXY');
  });

  it('in production, needs the master key and the admin key from the environment, and names both when both are missing', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/TESSERA_MASTER_KEY: required when NODE_ENV=production[\s\S]*TESSERA_ADMIN_KEY: required when NODE_ENV=production/);
    const keys = { TESSERA_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), TESSERA_ADMIN_KEY: 'admin_0123456789abcdefghijklmn' };
    expect(loadConfig({ NODE_ENV: 'production', ...keys }).production).toBe(true);
    expect(loadConfig({ NODE_ENV: 'development' }).production).toBe(false);
    expect(loadConfig({}).production).toBe(false);
  });
});
