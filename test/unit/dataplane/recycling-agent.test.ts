// The main's connections to a shard end after a lifetime, so a Service that balances connections (kube-proxy picks
// a pod per connection) spreads the lookups over pods added after the main connected. Here a TCP front that hands
// each new connection to the next of two backends stands in for the Service.
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createConnection, createServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecyclingAgent } from '../../../shard-server/inference/shard-client.js';

const listen = <T extends Server | TcpServer>(s: T) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
let backends: Server[];
let front: TcpServer;
let frontPort: number;

beforeAll(async () => {
  backends = ['a', 'b'].map((name) => createHttpServer((_, res) => res.end(name)));
  const ports = await Promise.all(backends.map(listen));
  let next = 0;
  front = createServer((c) => {
    const upstream = createConnection(ports[next++ % ports.length]!, '127.0.0.1');
    c.pipe(upstream).pipe(c);
    c.on('error', () => upstream.destroy());
    upstream.on('error', () => c.destroy());
  });
  frontPort = await listen(front);
});

afterAll(() => {
  front.close();
  for (const b of backends) b.close();
});

const get = (agent: RecyclingAgent) =>
  new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port: frontPort, path: '/', agent }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });

describe('RecyclingAgent', () => {
  it('keeps a connection alive within its lifetime and opens a new one (a new pod) after it', async () => {
    let now = 0;
    const agent = new RecyclingAgent({ keepAlive: true, maxSockets: 4 }, 1000, () => now);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) seen.push(await get(agent)); // one socket, reused
    now += 1000; // the socket has lived its lifetime: closed once its next request is done
    seen.push(await get(agent));
    for (let i = 0; i < 2; i++) seen.push(await get(agent));
    expect(seen).toEqual(['a', 'a', 'a', 'a', 'b', 'b']);
    agent.destroy();
  });

  it('without a lifetime ending, every request stays on the first backend', async () => {
    const agent = new RecyclingAgent({ keepAlive: true, maxSockets: 4 }, Infinity, () => 0);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await get(agent));
    expect(seen.size).toBe(1);
    agent.destroy();
  });
});
