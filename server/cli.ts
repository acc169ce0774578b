import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatWitness, parseWitness, type AuditVerification } from './audit/chain.ts';
import { adminKeyPath } from './keys/admin-key.ts';

/**
 * `npm run tessera -- <command>`: a thin client of the vault's admin API, so
 * it works the same against the embedded store (which only the running vault
 * may open) and PostgreSQL.
 */
const USAGE = `Usage:
  tessera merchants create --name <name> --origin <origin> [--origin <origin> …] [--unique-tokens]
  tessera merchants list [--limit <1-100>] [--starting-after <merchant id>]
  tessera keys rotate [--grace <seconds>]
  tessera audit verify [--expect <chain>:<seq>:<hash> …]

audit verify recomputes every audit chain and prints what it checked and each
problem as JSON; it exits with 1 when it finds any. --expect is a chain head
written down earlier (the vault logs them as "audit chain head"): the log must
still hold that entry, unchanged.

Options:
  --url <url>   the vault (default: $TESSERA_URL, else http://localhost:$PORT or 4000)
The admin key comes from $TESSERA_ADMIN_KEY, else <$TESSERA_DATA_DIR or .tessera>/admin.key.`;

function fail(message: string): never {
  console.error(`tessera: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function adminKey(): string {
  const fromEnv = process.env['TESSERA_ADMIN_KEY'];
  if (fromEnv) return fromEnv;
  const path = adminKeyPath(process.env['TESSERA_DATA_DIR'] ?? '.tessera');
  if (!existsSync(path)) fail(`no admin key: set TESSERA_ADMIN_KEY or start the vault once to create ${path}`);
  return readFileSync(path, 'utf8').trim();
}

async function call(url: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminKey()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    fail(`cannot reach the vault at ${url} (${(error as Error).message}); is it running?`);
  }
  const json = (await response.json()) as { error?: { code: string; message: string } };
  if (!response.ok) {
    console.error(`tessera: the vault answered ${response.status} ${json.error?.code ?? ''}: ${json.error?.message ?? ''}`);
    process.exit(1);
  }
  return json;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    name: { type: 'string' },
    origin: { type: 'string', multiple: true },
    'unique-tokens': { type: 'boolean' },
    limit: { type: 'string' },
    'starting-after': { type: 'string' },
    grace: { type: 'string' },
    expect: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const url = (values.url ?? process.env['TESSERA_URL'] ?? `http://localhost:${process.env['PORT'] ?? 4000}`).replace(/\/$/, '');

switch (positionals.join(' ')) {
  case 'merchants create': {
    if (!values.name) fail('merchants create needs --name');
    const merchant = (await call(url, 'POST', '/v1/merchants', {
      name: values.name,
      allowed_origins: values.origin ?? [],
      unique_tokens: values['unique-tokens'] ?? false,
    })) as Record<string, unknown>;
    console.log(JSON.stringify(merchant, null, 2));
    console.error('The secret key is shown this once; store it now.');
    break;
  }
  case 'merchants list': {
    const query = new URLSearchParams();
    if (values.limit !== undefined) query.set('limit', values.limit);
    if (values['starting-after'] !== undefined) query.set('starting_after', values['starting-after']);
    const path = `/v1/merchants${query.size === 0 ? '' : `?${query}`}`;
    console.log(JSON.stringify(await call(url, 'GET', path), null, 2));
    break;
  }
  case 'keys rotate': {
    const grace = values.grace === undefined ? undefined : Number(values.grace);
    if (grace !== undefined && !(Number.isInteger(grace) && grace >= 0)) fail('--grace must be a whole number of seconds');
    console.log(JSON.stringify(await call(url, 'POST', '/v1/keys/rotate', grace === undefined ? {} : { grace_seconds: grace }), null, 2));
    break;
  }
  case 'audit verify': {
    const expected = values.expect ?? [];
    for (const text of expected) {
      if (parseWitness(text) === undefined) fail(`--expect must be <chain>:<seq>:<hash> (e.g. mer_…:42:<64 hex digits>), not "${text}"`);
    }
    const query = new URLSearchParams(expected.map((text): [string, string] => ['expect', text]));
    const report = (await call(url, 'GET', `/v1/audit/verify${query.size === 0 ? '' : `?${query}`}`)) as AuditVerification;
    console.log(JSON.stringify(report, null, 2));
    const heads = report.chains.flatMap((c) => (c.head === null ? [] : [formatWitness({ chain: c.chain, ...c.head })]));
    const checked = `${report.entries} entries in ${report.chains.length} chains, ${report.witnesses} witnesses`;
    if (report.ok) {
      console.error(`tessera: the audit log is intact (${checked}). Heads now:\n  ${heads.join('\n  ')}`);
      break;
    }
    console.error(`tessera: the audit log has ${report.problems.length} problems (${checked}):`);
    for (const p of report.problems) {
      const where = p.seq === null ? '' : p.to_seq === null || p.to_seq === p.seq ? ` #${p.seq}` : ` #${p.seq}–${p.to_seq}`;
      console.error(`  ${p.kind} ${p.chain}${where}${p.entry === null ? '' : ` (${p.entry})`}: ${p.message}`);
    }
    process.exit(1);
  }
  default:
    fail(positionals.length === 0 ? 'no command given' : `unknown command "${positionals.join(' ')}"`);
}
