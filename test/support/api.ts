import { request } from 'node:http';
import type { TestVault } from './vault.ts';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  /** Sent as `Authorization: Bearer <key>`. */
  key?: string;
  json?: unknown;
  /** A raw body, sent as is (with `contentType`). */
  raw?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  /** How long to wait for the answer (default 15 s): a sandbox clock advance answers only once its charges have run. */
  timeoutMs?: number;
}

export async function api<T = any>(baseUrl: string, method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== undefined) headers['authorization'] = `Bearer ${options.key}`;
  let body: string | Uint8Array | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = options.contentType ?? 'application/json';
  } else if (options.raw !== undefined) {
    body = options.raw;
    if (options.contentType !== undefined) headers['content-type'] = options.contentType;
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 15_000) });
  const text = await response.text();
  let parsed: unknown = text;
  if (response.headers.get('content-type')?.includes('json')) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}

/**
 * `api`, sent from another loopback address (`127.0.0.2`, …): the vault sees
 * a different client IP, as it would for another machine.
 */
export function apiFrom<T = any>(
  fromAddress: string,
  baseUrl: string,
  method: string,
  path: string,
  options: { key?: string; authorization?: string; json?: unknown } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  const authorization = options.authorization ?? (options.key === undefined ? undefined : `Bearer ${options.key}`);
  if (authorization !== undefined) headers['authorization'] = authorization;
  const body = options.json === undefined ? undefined : JSON.stringify(options.json);
  if (body !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, baseUrl), { method, headers, localAddress: fromAddress, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
        const parsed: unknown = res.headers['content-type']?.includes('json') ? JSON.parse(text) : text;
        resolve({ status: res.statusCode ?? 0, headers: responseHeaders, body: parsed as T, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Random lower-case letters, to make names unique across runs. Not a
 * timestamp: the vault refuses a reference, customer or token value that
 * holds a Luhn-valid run of 13+ digits with a card brand's prefix, and
 * `Date.now()` plus a counter can be one, depending on the date.
 */
export function uniqueLetters(length = 10): string {
  return Array.from({ length }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('');
}

export interface TestMerchant {
  id: string;
  publishableKey: string;
  secretKey: string;
  allowedOrigins: string[];
}

export async function createMerchant(
  vault: Pick<TestVault, 'url' | 'adminKey'>,
  options: { name?: string; allowedOrigins?: string[]; uniqueTokens?: boolean } = {},
): Promise<TestMerchant> {
  const allowedOrigins = options.allowedOrigins ?? ['https://shop.example'];
  const response = await api(vault.url, 'POST', '/v1/merchants', {
    key: vault.adminKey,
    json: { name: options.name ?? 'Test Shop', allowed_origins: allowedOrigins, unique_tokens: options.uniqueTokens ?? false },
  });
  if (response.status !== 201) throw new Error(`creating a merchant failed: ${response.status} ${response.text}`);
  return { id: response.body.id, publishableKey: response.body.publishable_key, secretKey: response.body.secret_key, allowedOrigins };
}

export async function openSession(vaultUrl: string, merchant: TestMerchant, parentOrigin = merchant.allowedOrigins[0]!): Promise<string> {
  const response = await api(vaultUrl, 'POST', '/v1/sessions', { json: { key: merchant.publishableKey, parent_origin: parentOrigin } });
  if (response.status !== 201) throw new Error(`opening a session failed: ${response.status} ${response.text}`);
  return response.body.session;
}

/** Every token row in the database, deleted or not: "nothing stored" means this count does not move. */
export async function countTokens(vault: TestVault): Promise<number> {
  const { rows } = await vault.vault.db.query<{ n: number }>('select count(*)::int as n from tokens');
  return rows[0]!.n;
}
