/**
 * `npm run bench:webhook-send`: how many webhooks one `WebhookSender` sends
 * per second to a busy local https receiver (another process, so the two do
 * not share an event loop), `BENCH_CONCURRENCY` at a time (default 32) for
 * `BENCH_SECONDS` (default 10), signed with two secrets as during a
 * rotation. The sender alone: no database, no queue. The contract's target
 * for delivery end to end is ≥ 500 a second.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { WebhookSender } from '../server/webhooks/sender.ts';
import { newWebhookSecret } from '../server/webhooks/signature.ts';
import { makeTestCertificates } from '../test/support/tls.ts';

if (process.argv[2] === 'receiver') {
  let handshakes = 0;
  const server = https.createServer({ cert: process.env['BENCH_CERT'], key: process.env['BENCH_KEY'] }, (request, response) => {
    request.resume();
    request.on('end', () => response.end('{"ok":true}'));
  });
  server.on('secureConnection', () => handshakes++);
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })));
  process.on('message', () => process.send!({ handshakes }));
} else {
  const concurrency = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
  const seconds = Number(process.env['BENCH_SECONDS'] ?? 10);
  const tls = await makeTestCertificates();
  const receiver = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, 'receiver'], {
    env: { ...process.env, BENCH_CERT: tls.cert, BENCH_KEY: tls.key },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  try {
    const [line] = (await once(createInterface({ input: receiver.stdout! }), 'line')) as [string];
    const { port } = JSON.parse(line) as { port: number };
    const sender = new WebhookSender({ allowLocal: true, ca: tls.ca });
    const secrets = [newWebhookSecret(), newWebhookSecret()];
    const body = JSON.stringify({ id: 'evt_bench', type: 'payment.captured', created_at: new Date().toISOString(), data: { object: { id: 'pay_bench', amount: 4250, currency: 'EUR', status: 'captured', reference: 'order-1001' } } });
    const send = () => sender.deliver({ url: `https://localhost:${port}/hooks`, id: 'evt_bench', body, secrets });

    for (let i = 0; i < 500; i++) await send();
    const latencies: number[] = [];
    let failed = 0;
    const until = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          const result = await send();
          if (result.outcome === 'delivered') latencies.push(result.latencyMs);
          else failed++;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    receiver.send('handshakes?');
    const [{ handshakes }] = (await once(receiver, 'message')) as [{ handshakes: number }];
    sender.close();
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
    console.log(`webhook sender, ${concurrency} at a time for ${seconds} s to one https endpoint on loopback:`);
    console.log(`  ${(latencies.length / elapsed).toFixed(0)} delivered/s  (${latencies.length} delivered, ${failed} not)`);
    console.log(`  latency p50 ${at(0.5)} ms  p95 ${at(0.95)} ms  p99 ${at(0.99)} ms`);
    console.log(`  TLS handshakes at the receiver: ${handshakes} (warm-up included)`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    receiver.kill();
  }
}
