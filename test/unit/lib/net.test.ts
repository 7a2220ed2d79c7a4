import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePorts } from '../../../lib/net.js';

describe('free ports', () => {
  it('gives distinct ports, each of which can be listened on', async () => {
    const ports = await freePorts(40);
    expect(new Set(ports).size).toBe(40);
    for (const port of ports.slice(0, 5)) {
      const srv = createServer();
      await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
      await new Promise((r) => srv.close(r));
    }
  });
});
