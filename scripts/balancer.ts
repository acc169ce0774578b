/**
 * `npm run balancer`: the loopback load balancer of the multi-node tests
 * (test/support/balancer.ts) on a port of your choice, to try several vault
 * nodes by hand as docs/operations.md describes. A stand-in for nginx or
 * HAProxy on one machine, not something to put in front of a real vault.
 *
 *   npm run balancer -- [--port 8080] http://127.0.0.1:4001 http://127.0.0.1:4002
 */
import { parseArgs } from 'node:util';
import { startBalancer } from '../test/support/balancer.ts';

const { values, positionals } = parseArgs({ options: { port: { type: 'string', default: '8080' } }, allowPositionals: true });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535 || positionals.length === 0 || positionals.some((url) => !URL.canParse(url))) {
  console.error('usage: npm run balancer -- [--port 8080] <vault node URL>...');
  process.exit(2);
}

const balancer = await startBalancer(positionals, { port });
console.log(`balancer on ${balancer.url}, round robin over ${positionals.join(', ')} (those whose /healthz answers 200)`);
let last = '';
const report = setInterval(() => {
  const now = balancer.healthy().sort().join(', ') || 'none';
  if (now !== last) console.log(`healthy: ${now}`);
  last = now;
}, 500);
const stop = () => {
  clearInterval(report);
  void balancer.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
