import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatWitness, parseWitness, type AuditVerification } from './audit/chain.ts';
import { loadCliConfig, type CliConfig } from './config.ts';
import { adminKeyPath } from './keys/admin-key.ts';
import { importTokens, MAX_BATCH_ITEMS } from './cli/tokens-import.ts';
import { submitPaymentsBatch } from './cli/payments-batch.ts';
import { CommandError } from './cli/vault-client.ts';

/**
 * `npm run tessera -- <command>`: a thin client of the vault's admin API, so
 * it works the same against the embedded store (which only the running vault
 * may open) and PostgreSQL.
 */
const USAGE = `Usage:
  tessera merchants create --name <name> --origin <origin> [--origin <origin> …] [--unique-tokens]
  tessera merchants list [--limit <1-100>] [--starting-after <merchant id>]
  tessera merchants issue-secret-key --merchant <merchant id> [--expires-in <seconds>]
  tessera keys rotate [--grace <seconds>]
  tessera keys roll-data-key (--merchant <merchant id> | --all)
  tessera keys reencrypt [--batch-size <n>]
  tessera keys rewrap [--batch-size <n>]
  tessera audit verify [--expect <chain>:<seq>:<hash> …]
  tessera tokens import <cards.csv> [--correlation-id <id>] [--out <results.csv>] [--secret-key-file <path>] [--batch-size <1-10000>]
    [--network-tokens]
  tessera payments batch <ops.csv> [--out <results.csv>] [--secret-key-file <path>]

audit verify recomputes every audit chain and prints what it checked and each
problem as JSON; it exits with 1 when it finds any. --expect is a chain head
written down earlier (the vault logs them as "audit chain head"): the log must
still hold that entry, unchanged.

tokens import encrypts each row of a CSV of cards to the vault's key on this
machine, sends them as token batches, shows the progress and writes a results
CSV (default <cards>.results.csv): row, reference, status, token, brand, last4,
exp_month, exp_year, error_code, error_message. Input columns: number, exp_month,
exp_year (required), cvc, name, postal_code, reference, customer, reusable,
decline_duplicates. --network-tokens asks the card networks for a network token for
each reusable token (token batches' network_tokens). It exits with 3 when some rows failed.

payments batch sends a CSV of payment operations (columns op, payment, token,
amount, currency, reference; op is capture, void, refund or charge) as one
payment batch, shows the progress and writes a results CSV (default
<ops>.results.csv): row, op, reference, status, payment, payment_status,
refund, error_code, error_message, decline_code. A malformed file is refused
whole, naming its line and column. It exits with 3 when some operations failed.

Options:
  --url <url>   the vault (default: $TESSERA_URL, else http://localhost:$PORT or 4000)
The admin key comes from $TESSERA_ADMIN_KEY, else <$TESSERA_DATA_DIR or .tessera>/admin.key.
tokens import and payments batch take the merchant's secret key from --secret-key-file, else $TESSERA_SECRET_KEY
(never as an argument: arguments show in ps and in shell history).`;

function fail(message: string): never {
  console.error(`tessera: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let config: CliConfig;
try {
  config = loadCliConfig();
} catch (error) {
  fail((error as Error).message);
}

function adminKey(): string {
  if (config.adminKey !== undefined) return config.adminKey;
  const path = adminKeyPath(config.dataDir);
  if (!existsSync(path)) fail(`no admin key: set TESSERA_ADMIN_KEY or start the vault once to create ${path}`);
  return readFileSync(path, 'utf8').trim();
}

/** The merchant's secret key: from a file (trimmed), else the environment; never from an argument. */
function merchantSecretKey(): string {
  const path = values['secret-key-file'];
  if (path === undefined) {
    if (config.secretKey === undefined) fail('this command needs the secret key: --secret-key-file <path> or TESSERA_SECRET_KEY');
    return config.secretKey;
  }
  if (!existsSync(path)) fail(`no file ${path}`);
  const key = readFileSync(path, 'utf8').trim();
  if (!/^sk_test_[0-9A-Za-z]{20,64}$/.test(key)) fail(`${path} does not hold a secret key (sk_test_…)`);
  return key;
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

// An unknown option is a usage error, not a stack trace (the message names the option, never a value).
const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        name: { type: 'string' },
        origin: { type: 'string', multiple: true },
        'unique-tokens': { type: 'boolean' },
        limit: { type: 'string' },
        'starting-after': { type: 'string' },
        grace: { type: 'string' },
        merchant: { type: 'string' },
        all: { type: 'boolean' },
        'batch-size': { type: 'string' },
        'expires-in': { type: 'string' },
        expect: { type: 'string', multiple: true },
        'correlation-id': { type: 'string' },
        'network-tokens': { type: 'boolean' },
        out: { type: 'string' },
        'secret-key-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    fail((error as Error).message.split('.')[0]!);
  }
})();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const url = (values.url ?? config.vaultUrl).replace(/\/$/, '');

// `tokens import` and `payments batch` take a file after the command; every other command is two words.
const withFile = ['tokens import', 'payments batch'].find((name) => positionals.slice(0, 2).join(' ') === name);
const command = withFile ?? positionals.join(' ');
switch (command) {
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
  case 'merchants issue-secret-key': {
    if (values.merchant === undefined) fail('merchants issue-secret-key needs --merchant <id>');
    const expiresIn = values['expires-in'] === undefined ? undefined : Number(values['expires-in']);
    if (expiresIn !== undefined && !(Number.isInteger(expiresIn) && expiresIn >= 0)) fail('--expires-in must be a whole number of seconds');
    const issued = await call(url, 'POST', `/v1/merchants/${encodeURIComponent(values.merchant)}/secret-keys`, expiresIn === undefined ? {} : { expires_in: expiresIn });
    console.log(JSON.stringify(issued, null, 2));
    console.error('The secret key is shown this once; store it now.');
    break;
  }
  case 'keys roll-data-key': {
    if ((values.merchant === undefined) === !values.all) fail('keys roll-data-key needs --merchant <id> or --all');
    const ids = values.merchant !== undefined ? [values.merchant] : await allMerchantIds(url);
    for (const id of ids) console.log(JSON.stringify(await call(url, 'POST', `/v1/merchants/${encodeURIComponent(id)}/data-key/roll`, {})));
    console.error('New cards use the new version now; `tessera keys reencrypt` moves the others (the vault also does it in the background).');
    break;
  }
  case 'keys reencrypt':
    await untilDone(url, '/v1/keys/reencrypt', 'cards re-encrypted', 'reencrypted');
    break;
  case 'keys rewrap':
    await untilDone(url, '/v1/keys/rewrap', 'keys rewrapped', 'rewrapped');
    break;
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
  case 'tokens import': {
    const [file, ...extra] = positionals.slice(2);
    if (file === undefined || extra.length > 0) fail('tokens import needs one CSV file');
    const batchSize = values['batch-size'] === undefined ? MAX_BATCH_ITEMS : Number(values['batch-size']);
    if (!(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= MAX_BATCH_ITEMS)) fail(`--batch-size must be a whole number from 1 to ${MAX_BATCH_ITEMS}`);
    const out = values.out ?? file.replace(/(\.csv)?$/i, '.results.csv');
    try {
      const { succeeded, failed } = await importTokens({
        vaultUrl: url,
        secretKey: merchantSecretKey(),
        file,
        out,
        correlationId: values['correlation-id'],
        networkTokens: values['network-tokens'] ?? false,
        batchSize,
      });
      console.error(`tessera: ${succeeded} rows tokenized, ${failed} failed; results in ${out}`);
      if (failed > 0) process.exit(3);
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      console.error(`tessera: ${error.message}`);
      process.exit(1);
    }
    break;
  }
  case 'payments batch': {
    const [file, ...extra] = positionals.slice(2);
    if (file === undefined || extra.length > 0) fail('payments batch needs one CSV file');
    const out = values.out ?? file.replace(/(\.csv)?$/i, '.results.csv');
    try {
      const { succeeded, failed } = await submitPaymentsBatch({ vaultUrl: url, secretKey: merchantSecretKey(), file, out });
      console.error(`tessera: ${succeeded} operations done, ${failed} failed; results in ${out}`);
      if (failed > 0) process.exit(3);
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      console.error(`tessera: ${error.message}`);
      process.exit(1);
    }
    break;
  }
  default:
    fail(positionals.length === 0 ? 'no command given' : `unknown command "${positionals.join(' ')}"`);
}

/** Every merchant id, page by page. */
async function allMerchantIds(vaultUrl: string): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = (await call(vaultUrl, 'GET', `/v1/merchants?limit=100${after === undefined ? '' : `&starting_after=${after}`}`)) as {
      data: { id: string }[];
      has_more: boolean;
    };
    ids.push(...page.data.map((m) => m.id));
    if (!page.has_more || page.data.length === 0) return ids;
    after = page.data.at(-1)!.id;
  }
}

/**
 * Calls a key job until nothing remains, printing progress on one line.
 * Each call is a bounded slice of the work, so a killed vault or CLI loses
 * nothing: run the command again and it goes on from where the rows are.
 */
async function untilDone(vaultUrl: string, path: string, label: string, field: 'reencrypted' | 'rewrapped'): Promise<void> {
  const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) fail('--batch-size must be a positive whole number');
  let done = 0;
  for (;;) {
    const progress = (await call(vaultUrl, 'POST', path, batchSize === undefined ? {} : { batch_size: batchSize })) as Record<string, number>;
    done += progress[field] ?? 0;
    const remaining = progress['remaining'] ?? 0;
    process.stderr.write(`\r${label}: ${done}, remaining: ${remaining}   `);
    if (remaining === 0) break;
    if ((progress[field] ?? 0) === 0) {
      process.stderr.write('\n');
      console.error('tessera: no progress was made; the vault log says why.');
      process.exit(1);
    }
  }
  process.stderr.write('\n');
  console.log(JSON.stringify({ [field]: done, remaining: 0 }));
}
