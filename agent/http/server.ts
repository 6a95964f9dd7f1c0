import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** The largest body the route reads; routes without one read none (a GET's body is refused). */
  maxBodyBytes?: number;
  handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> | void;
}

/**
 * Limits of the listener. A request has 10 s to send its headers and 15 s to be whole; an idle
 * keep-alive connection is closed after 5 s; 64 connections at most (more are dropped on accept).
 */
export const HTTP_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  idleSocketMs: 15_000,
  maxConnections: 64,
  maxHeaderBytes: 16 * 1024,
};

/** Refusals logged per minute; the rest are counted and summed up in the next line. */
const REFUSAL_LOGS_PER_MINUTE = 10;

export interface HttpServerOptions {
  limits?: Partial<typeof HTTP_LIMITS>;
  now?: () => number;
}

/**
 * The agent's one HTTP listener: the webhook, `/metrics` and `/healthz`. Every request gets an
 * answer (a malformed one a 400) and nothing a client sends can throw out of it: slow clients
 * are cut off by the timeouts, connections are capped, and only a route that takes a body
 * reads one, up to its limit. Bound to 127.0.0.1 by default; anything else is warned about.
 */
export async function startHttpServer(listen: { host: string; port: number }, routes: Route[], log: Logger, opts: HttpServerOptions = {}): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const limits = { ...HTTP_LIMITS, ...opts.limits };
  const refusals = refusalLog(log, opts.now ?? Date.now);
  // (the request and header timeouts are enforced on each check: once a second, not Node's 30 s)
  const server = createServer({ maxHeaderSize: limits.maxHeaderBytes, requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs, connectionsCheckingInterval: 1000 }, (req, res) => {
    try {
      serve(req, res, routes, refusals, log);
    } catch (err) {
      // nothing a request carries may take the agent down
      log.error({ err: (err as Error).message }, 'HTTP request failed');
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  });
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleSocketMs, (socket) => socket.destroy());
  // a malformed request line or oversized headers: Node answers 400/431 here, never a throw
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    refusals.note(`malformed request (${err.code ?? err.message})`, (socket as { remoteAddress?: string }).remoteAddress);
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable && !socket.destroyed) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    // a client that does not read the answer is not waited for
    setTimeout(() => socket.destroy(), 1000).unref();
  });
  server.on('drop', (data?: { remoteAddress?: string }) => refusals.note(`connection refused: ${limits.maxConnections} open already`, data?.remoteAddress));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  log.info({ host: listen.host, port }, 'HTTP listener started');
  if (!isLoopback(listen.host)) log.warn({ host: listen.host, port }, 'The HTTP listener is reachable beyond this host: publish only the webhook through a reverse proxy, and set http.metricsTokenFile');
  return {
    server,
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function serve(req: IncomingMessage, res: ServerResponse, routes: Route[], refusals: ReturnType<typeof refusalLog>, log: Logger): void {
  const refuse = (status: number, error: string, headers: Record<string, string> = {}) => {
    refusals.note(`${status} ${error}`, req.socket.remoteAddress);
    // the body is not read: the connection is not reused
    reply(res, status, { error }, { connection: 'close', ...headers });
  };
  const path = requestPath(req.url);
  if (path === undefined) return refuse(400, 'malformed request path');
  const route = routes.find((r) => r.path === path);
  if (!route) return refuse(404, 'not found');
  if (route.method !== req.method) return refuse(405, `use ${route.method}`, { allow: route.method });
  const limit = route.maxBodyBytes ?? 0;
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && !(Number.isSafeInteger(declared) && declared >= 0)) return refuse(400, 'bad content-length');
  if ((declared ?? 0) > limit || (limit === 0 && req.headers['transfer-encoding'])) return refuse(413, limit === 0 ? 'this path takes no body' : `body larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > limit) {
      if (!res.headersSent) refuse(413, `body larger than ${limit} bytes`);
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('error', () => res.destroy());
  req.on('end', () => {
    if (res.headersSent) return;
    Promise.resolve()
      .then(() => route.handle(req, Buffer.concat(chunks), res))
      .catch((err: unknown) => {
        log.error({ path, err: (err as Error).message }, 'HTTP handler failed');
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      });
  });
}

/** The path of a request target, or undefined when it is not an origin-form path (`/...`). */
export function requestPath(target: string | undefined): string | undefined {
  if (!target || !target.startsWith('/') || target.startsWith('//')) return undefined;
  try {
    return new URL(target, 'http://agent').pathname;
  } catch {
    return undefined;
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Refusals logged at most REFUSAL_LOGS_PER_MINUTE a minute: a flood does not flood the journal. */
function refusalLog(log: Logger, now: () => number) {
  let windowStart = now();
  let logged = 0;
  let suppressed = 0;
  return {
    note(reason: string, remote: string | undefined) {
      if (now() - windowStart >= 60_000) {
        if (suppressed > 0) log.warn({ suppressed }, 'HTTP requests refused in the last minute beyond those logged');
        windowStart = now();
        logged = 0;
        suppressed = 0;
      }
      if (logged < REFUSAL_LOGS_PER_MINUTE) {
        logged++;
        log.warn({ reason, remote }, 'HTTP request refused');
      } else suppressed++;
    },
  };
}

export function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

/** The route, answering only requests with `Authorization: Bearer <token>` (compared in constant time). */
export function withBearerToken(route: Route, token: string): Route {
  const expected = createHash('sha256').update(token).digest();
  return {
    ...route,
    handle(req, body, res) {
      const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? '';
      if (!timingSafeEqual(createHash('sha256').update(given).digest(), expected)) return reply(res, 401, { error: 'a bearer token is required' }, { 'www-authenticate': 'Bearer' });
      return route.handle(req, body, res);
    },
  };
}
