/**
 * An HTTP receiver on 127.0.0.1 that records JSON POSTs, for webhook notifications. What it
 * answers is chosen per request path, so one receiver serves several channels of a test:
 *   /hang...        never answers (the client's deadline must fire; close() drops the socket)
 *   /status/<code>  answers <code> with a short text body
 *   anything else   answers 200 "ok"
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (the raw text when it is not JSON). */
  body: unknown;
  at: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Completed requests (a hanging request is recorded once its body arrived). */
  readonly received: ReceivedWebhook[];
  /** Requests for `path`, in arrival order. */
  on(path: string): ReceivedWebhook[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body, at: Date.now() });
      if (path.startsWith('/hang')) return; // keep the socket open without an answer
      const m = /^\/status\/(\d{3})/.exec(path);
      const status = m ? Number(m[1]) : 200;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : `fake failure ${status}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    on: (path) => received.filter((r) => r.path === path),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
