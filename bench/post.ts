import { request, type Agent } from 'node:http';

/** A JSON POST with the merchant's secret key over `agent`'s kept-alive sockets: its status, the body read and dropped. */
export function post(agent: Agent, url: URL, secretKey: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 30_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * An open loop: request i is due `i / rate` seconds after the start and is
 * sent then, whatever is still unanswered. `count` says how many, given the
 * start (performance.now()); `send` gets each one's index and due time and
 * must settle without throwing. Resolves once every request is answered.
 */
export async function paced(rate: number, count: (start: number) => number, send: (i: number, due: number) => Promise<void>): Promise<void> {
  const start = performance.now();
  const due = (i: number) => start + (i * 1000) / rate;
  const total = count(start);
  const answers: Promise<void>[] = [];
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      for (const now = performance.now(); sent < total && due(sent) <= now; sent++) answers.push(send(sent, due(sent)));
      if (sent >= total) resolve();
      else setTimeout(tick, Math.max(0, due(sent) - performance.now()));
    };
    tick();
  });
  await Promise.all(answers);
}
