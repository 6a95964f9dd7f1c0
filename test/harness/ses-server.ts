/**
 * A fake Amazon SES v2 endpoint on 127.0.0.1 for @aws-sdk/client-sesv2 (test-env README
 * section 6). SendEmail is `POST /v2/email/outbound-emails` with a JSON body and a SigV4
 * Authorization header; it answers 200 `{"MessageId": ...}`, or, after `reject(name)`, 400
 * with `x-amzn-errortype: <name>`, which the SDK turns into its typed exception (e.g.
 * MessageRejected). Signatures are recorded, not checked.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SesRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (SendEmail's input, in the API's own field names). */
  body: unknown;
  /** Set when it was accepted. */
  messageId?: string;
}

export interface SesTestServer {
  /** `http://127.0.0.1:PORT`, the SDK client's `endpoint`. */
  readonly endpoint: string;
  /** Every request received, accepted or not. */
  readonly requests: SesRequest[];
  /** Answer SendEmail with this error type from now on (undefined: accept again). */
  reject(errorType: string | undefined): void;
  close(): Promise<void>;
}

export async function startSesServer(): Promise<SesTestServer> {
  const requests: SesRequest[] = [];
  let rejectWith: string | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      const rec: SesRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      requests.push(rec);
      const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID(), ...headers });
        res.end(JSON.stringify(value));
      };
      if (req.method !== 'POST' || req.url !== '/v2/email/outbound-emails') {
        return json(404, { message: `no fake for ${req.method} ${req.url}` }, { 'x-amzn-errortype': 'NotFoundException' });
      }
      if (rejectWith) return json(400, { message: `fake ${rejectWith}` }, { 'x-amzn-errortype': rejectWith });
      rec.messageId = `0100${Date.now().toString(16)}-${randomUUID()}-000000`;
      json(200, { MessageId: rec.messageId });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    reject(errorType) {
      rejectWith = errorType;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
