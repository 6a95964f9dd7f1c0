/**
 * A real Git server over smart HTTP on 127.0.0.1, in the test's own process: Node http in
 * front of `git http-backend` (CGI), one CGI process per request. Pushes persist in bare
 * repositories under `root`, so what the agent fetches is what a test pushed, hooks run, and
 * refusals look like a real server's. (`git-http-mock-server` from npm pushes into a
 * throwaway copy, so it cannot stand in for this.)
 *
 * Pitfall: the server shares the test's event loop. Never run the git CLI against it with
 * execSync/spawnSync (the server cannot answer while the loop is blocked: deadlock); use the
 * async `git()` of test/harness/git-cli.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { dirname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { gitTempDir, removeGitTempDir } from './git-temp.js';

const execFileP = promisify(execFile);

export interface GitCredentials {
  username: string;
  password: string;
}

export interface GitServerOptions {
  /** Directory holding the bare repositories. Default: a new /tmp/gagit-XXXXXX, removed by stop(). */
  root?: string;
  /** Basic auth credentials; `false` for anonymous read/write. Default: user `git`, random password. */
  auth?: GitCredentials | false;
  /** Port on 127.0.0.1. Default: one the kernel picks (kept across pause/resume). */
  port?: number;
}

export interface GitServer {
  /** `http://127.0.0.1:PORT` (no trailing slash, no credentials). */
  readonly url: string;
  readonly port: number;
  readonly root: string;
  readonly auth: GitCredentials | false;
  /** `http://127.0.0.1:PORT/<name>.git`, without credentials (isomorphic-git takes them via onAuth). */
  repoUrl(name: string): string;
  /** Like repoUrl with `user:password@` in it: for the git CLI, which has no onAuth. */
  credentialUrl(name: string): string;
  /** `git init --bare` a repository that accepts pushes; resolves to its path. */
  createRepo(name: string, opts?: { branch?: string }): Promise<string>;
  /** Path of the bare repository of `name` (whether or not it exists). */
  repoPath(name: string): string;
  /**
   * Install (or with null remove) `hooks/pre-receive` of a repository. A script without a
   * `#!` line gets `#!/bin/sh`. Its output reaches the pusher as `remote:` progress lines and
   * a non-zero exit refuses the whole push.
   */
  setPreReceiveHook(name: string, script: string | null): void;
  /** Stop listening (clients get ECONNREFUSED), dropping open connections; same port and data. */
  pause(): Promise<void>;
  /** Listen again on the same port. */
  resume(): Promise<void>;
  /** HTTP requests received so far, including ones refused with 401. */
  readonly requests: number;
  /** Close, kill running CGI processes, and remove `root` if this server created it. */
  stop(): Promise<void>;
}

export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const ownsRoot = opts.root === undefined;
  const root = resolve(opts.root ?? gitTempDir('gagit'));
  mkdirSync(root, { recursive: true });
  const auth: GitCredentials | false =
    opts.auth === undefined ? { username: 'git', password: `pw-${Math.random().toString(36).slice(2)}` } : opts.auth;
  const expected = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : '';
  const children = new Set<ChildProcess>();
  let requests = 0;

  const server = createServer((req, res) => {
    requests += 1;
    if (auth && req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      req.resume();
      return;
    }
    serveCgi(req, res, root, auth ? auth.username : 'anonymous', children);
  });
  let listening = false;
  const listen = (port: number): Promise<number> =>
    new Promise((ok, fail) => {
      server.once('error', fail);
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        server.off('error', fail);
        listening = true;
        const addr = server.address();
        ok(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  const port = await listen(opts.port ?? 0);
  const url = `http://127.0.0.1:${port}`;

  function repoPath(name: string): string {
    const path = resolve(root, name.endsWith('.git') ? name : `${name}.git`);
    if (!path.startsWith(root + sep)) throw new Error(`git server: bad repository name ${JSON.stringify(name)}`);
    return path;
  }
  const repoSuffix = (name: string): string => (name.endsWith('.git') ? name : `${name}.git`);

  async function pause(): Promise<void> {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((ok) => server.close(() => ok()));
    server.closeAllConnections();
    await closed;
    // let the client side of the dropped keep-alive sockets see the FIN before anyone
    // reuses them (same event loop): otherwise the next request may get ECONNRESET
    await new Promise((r) => setTimeout(r, 20));
  }

  return {
    url,
    port,
    root,
    auth,
    repoUrl: (name) => `${url}/${repoSuffix(name)}`,
    credentialUrl(name) {
      if (!auth) return `${url}/${repoSuffix(name)}`;
      const cred = `${encodeURIComponent(auth.username)}:${encodeURIComponent(auth.password)}`;
      return `http://${cred}@127.0.0.1:${port}/${repoSuffix(name)}`;
    },
    repoPath,
    async createRepo(name, o = {}) {
      const path = repoPath(name);
      mkdirSync(dirname(path), { recursive: true });
      await execFileP('git', ['init', '--quiet', '--bare', `--initial-branch=${o.branch ?? 'main'}`, path], { env: gitEnv() });
      // http-backend serves receive-pack only with REMOTE_USER set or this switch on
      await execFileP('git', ['-C', path, 'config', 'http.receivepack', 'true'], { env: gitEnv() });
      return path;
    },
    setPreReceiveHook(name, script) {
      const hook = join(repoPath(name), 'hooks', 'pre-receive');
      if (script === null) {
        rmSync(hook, { force: true });
        return;
      }
      if (!existsSync(dirname(hook))) throw new Error(`git server: no repository ${name}`);
      writeFileSync(hook, script.startsWith('#!') ? script : `#!/bin/sh\n${script}`);
      chmodSync(hook, 0o755);
    },
    pause,
    async resume() {
      if (!listening) await listen(port);
    },
    get requests() {
      return requests;
    },
    async stop() {
      await pause();
      for (const child of children) child.kill('SIGKILL');
      if (ownsRoot) removeGitTempDir(root);
    },
  };
}

/** Environment of server-side git: no user or system config of the machine leaks in. */
function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: '/nonexistent', ...extra };
}

/** Run `git http-backend` for one request, streaming the body in and the CGI reply out. */
function serveCgi(req: IncomingMessage, res: ServerResponse, root: string, user: string, children: Set<ChildProcess>): void {
  const u = new URL(req.url ?? '/', 'http://x');
  const env = gitEnv({
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: decodeURIComponent(u.pathname),
    REQUEST_METHOD: req.method ?? 'GET',
    QUERY_STRING: u.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    REMOTE_USER: user, // without it http-backend refuses receive-pack (pushes)
    GIT_HTTP_MAX_REQUEST_BUFFER: '100M',
  });
  // no CONTENT_LENGTH (chunked upload) makes http-backend read to EOF
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  // http-backend inflates gzip bodies itself (the git CLI gzips large fetch requests)
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  if (typeof req.headers['git-protocol'] === 'string') env.GIT_PROTOCOL = req.headers['git-protocol'];

  const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(cgi);
  cgi.on('exit', () => children.delete(cgi));
  // http-backend may exit before reading the whole body (e.g. a refused request): ignore EPIPE
  cgi.stdin.on('error', () => undefined);
  req.pipe(cgi.stdin);
  // a client that goes away mid-request; not after a normal end (receive-pack may still be
  // finishing up, e.g. running post-receive)
  res.on('close', () => {
    if (!res.writableFinished && cgi.exitCode === null) cgi.kill('SIGKILL');
  });

  let head = Buffer.alloc(0);
  let headersDone = false;
  let stderr = '';
  cgi.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const [end, sepLen] = crlf >= 0 && (lf < 0 || crlf < lf) ? [crlf, 4] : [lf, 2];
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    const headers: OutgoingHttpHeaders = {};
    for (const line of head.subarray(0, end).toString().split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === 'status') status = parseInt(v, 10);
      else headers[k] = v;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + sepLen));
  });
  cgi.stdout.on('end', () => {
    if (!headersDone && !res.headersSent) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`git http-backend gave no reply\n${stderr}`);
      return;
    }
    res.end();
  });
  cgi.on('error', (e) => {
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(String(e));
  });
}
