/**
 * A local S3 endpoint for tests: s3rver 3 (npm) in a CHILD node process started with
 * `--openssl-legacy-provider` (test/harness/s3rver-runner.mjs), listening on 127.0.0.1.
 * Use it with @aws-sdk/client-s3 v3: `forcePathStyle: true`, the endpoint below and the keys
 * S3RVER/S3RVER (see `client()` / `clientConfig`).
 *
 * Gaps of s3rver 3.7.1 against real S3, as checked by test/integration/s3-harness.test.ts
 * (and test-env README section 5):
 * - needs `--openssl-legacy-provider` in the process that RUNS s3rver (done here): its
 *   continuation tokens are DES-encrypted, so without it every TRUNCATED listing
 *   (ListObjectsV2 with MaxKeys < number of keys) answers 500 InternalError;
 * - SigV4 signatures are not checked: a wrong secret key is accepted. Only the access key id
 *   is: any id but S3RVER gets 403 InvalidAccessKeyId;
 * - AbortMultipartUpload answers 405 (MethodNotAllowed) and ListMultipartUploads 501
 *   (NotImplemented): an aborted/failed lib-storage Upload leaves its parts on disk;
 * - no EntityTooSmall: parts under 5 MiB are accepted;
 * - the ETag of a multipart object is a plain `"<32 hex>"`, without real S3's `-<parts>` suffix;
 * - `If-None-Match: *` on PutObject is ignored (the object is overwritten; real S3: 412);
 * - `ServerSideEncryption: 'AES256'` (PutObject and lib-storage Upload) is accepted and
 *   silently ignored: HeadObject/GetObject never return `ServerSideEncryption` (real S3 says
 *   AES256), so a test cannot assert encryption through s3rver;
 * - the SDK's default CRC32 checksums (client-s3 >= 3.729) are not stored: HeadObject and
 *   GetObject with `ChecksumMode: 'ENABLED'` return no `ChecksumCRC32`;
 * - objects are plain files under `dir/<bucket>/`, served by one node process (a 20 MiB
 *   multipart Upload takes ~0.3 s here).
 * pause() kills the process: requests then fail with ECONNREFUSED (not a 5xx), like an
 * endpoint that is down; resume() restarts it on the same port with the same directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { isAlive, readPid, settlesWithin } from './cleanup.js';
import { freePort } from './ports.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const RUNNER = join(HERE, 's3rver-runner.mjs');
const DIR_PREFIX = 'gads3-';
const OWNER_FILE = '.owner.pid';
const READY = /S3RVER_READY (\d+)/;

export interface S3TestServerOptions {
  /** s3rver's storage directory (buckets are sub-directories). Default: a new /tmp/gads3-XXXXXX, removed by stop(). */
  dir?: string;
  /** Port on 127.0.0.1; 0 or absent: a free one. */
  port?: number;
  /** Buckets created at start (existing ones are kept with their objects). */
  buckets?: string[];
  /** Serve HTTPS with this key and certificate (restic's S3 client needs TLS with s3rver). */
  tls?: { key: string; cert: string };
}

export interface S3TestServer {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly port: number;
  readonly dir: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly region: string;
  /** Everything an S3Client needs for this server (path-style addressing). */
  readonly clientConfig: S3ClientConfig;
  /** Kill the process: requests fail with ECONNREFUSED. Data stays. */
  pause(): Promise<void>;
  /** Start again on the same port with the same directory. */
  resume(): Promise<void>;
  /** Stop the process (and remove `dir` if this harness created it). */
  stop(): Promise<void>;
  /** A new S3Client for this server (`forcePathStyle: true`); stop() destroys the ones it made. */
  client(): S3Client;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Remove directories of earlier runs whose owner process died before its teardown. */
function cleanStaleDirs(): void {
  for (const name of readdirSync('/tmp')) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join('/tmp', name);
    const owner = readPid(join(dir, OWNER_FILE));
    if (owner === undefined || isAlive(owner)) continue;
    // its s3rver child exits by itself when its stdin (a pipe from the owner) closes
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startS3Server(opts: S3TestServerOptions = {}): Promise<S3TestServer> {
  cleanStaleDirs();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(`/tmp/${DIR_PREFIX}`);
  mkdirSync(dir, { recursive: true });
  // a plain file: s3rver lists only directories as buckets
  if (ownDir) writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
  const port = opts.port || (await freePort());
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const region = 'us-east-1';
  const clientConfig: S3ClientConfig = { endpoint, region, credentials, forcePathStyle: true };
  const args = JSON.stringify({ port, directory: dir, buckets: opts.buckets ?? [], ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}) });

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const clients: S3Client[] = [];

  /** Spawn once; resolves when it prints its ready line, rejects with its output if it exits first. */
  function spawnOnce(): Promise<void> {
    // stdin is a pipe: the runner exits when it closes, i.e. when this process dies
    const proc = spawn(process.execPath, ['--openssl-legacy-provider', RUNNER, args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    child = proc;
    let output = '';
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        if (child === proc) child = undefined;
        resolve();
      });
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`s3rver on ${endpoint} did not start within 15 s\n${output}`));
      }, 15_000);
      proc.stdout?.on('data', (d: Buffer) => {
        output += d.toString();
        if (READY.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`s3rver on ${endpoint} exited at start (code ${code} signal ${signal})\n${output}`));
      });
    });
  }

  async function resume(): Promise<void> {
    if (child) return;
    // the port can linger for a moment after a pause; retry a few times
    for (let attempt = 1; ; attempt++) {
      try {
        await spawnOnce();
        return;
      } catch (err) {
        await exited;
        child = undefined;
        if (attempt >= 5) throw err;
        await sleep(200);
      }
    }
  }

  async function pause(): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    if (!(await settlesWithin(exited, 5000))) {
      proc.kill('SIGKILL');
      await exited;
    }
    child = undefined;
  }

  const onExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.on('exit', onExit);
  try {
    await resume();
  } catch (err) {
    process.off('exit', onExit);
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    endpoint,
    port,
    dir,
    credentials,
    region,
    clientConfig,
    pause,
    resume,
    async stop() {
      for (const c of clients.splice(0)) c.destroy();
      await pause();
      process.off('exit', onExit);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
    client() {
      const c = new S3Client({ ...clientConfig, credentials: { ...credentials } });
      clients.push(c);
      return c;
    },
  };
}
