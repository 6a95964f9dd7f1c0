import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

/**
 * A TCP port that is free on 127.0.0.1 right now (the kernel picks it by binding port 0).
 * There is a small window before the caller binds it; ports come from the ephemeral range,
 * so collisions between tests of one run are very unlikely.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: unexpected server address'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

let counter = 0;

/**
 * A name that is unique per call, per worker and per run, valid as a Docker container/volume
 * name and as a Git ref component: tests share one engine, so every object they create needs
 * its own name, and the prefix tells which test left it behind.
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  const safe = prefix.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '');
  return `${safe || 't'}-${process.pid}-${counter}-${randomBytes(3).toString('hex')}`;
}
