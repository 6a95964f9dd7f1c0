import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> | void;
}

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The agent's one HTTP listener (webhook now; metrics and health with the operations issue).
 * Bound to 127.0.0.1 by default; a reverse proxy publishes the webhook when a forge must reach it.
 */
export async function startHttpServer(listen: { host: string; port: number }, routes: Route[], log: Logger): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const route = routes.find((r) => r.path === url.pathname);
    if (!route) return reply(res, 404, { error: 'not found' });
    if (route.method !== req.method) return reply(res, 405, { error: `use ${route.method}` }, { allow: route.method });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reply(res, 413, { error: 'body too large' });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      Promise.resolve(route.handle(req, Buffer.concat(chunks), res)).catch((err: unknown) => {
        log.error({ path: url.pathname, err: (err as Error).message }, 'HTTP handler failed');
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  log.info({ host: listen.host, port }, 'HTTP listener started');
  return { server, port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}
