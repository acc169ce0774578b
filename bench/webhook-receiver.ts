/**
 * The webhook receiver of `bench/batch.ts`, in a process of its own: plain
 * http on 127.0.0.1, answers 200 at once, and reports each event id's
 * arrival time (`Date.now()`, the same clock as the sender's) when asked.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const arrivals: [string, number][] = [];
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    arrivals.push([String(req.headers['webhook-id']), Date.now()]);
    res.writeHead(200).end();
  });
});
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('message', () => process.send!({ arrivals }));
process.on('disconnect', () => process.exit(0));
