/**
 * A private OCI registry on 127.0.0.1: Debian's docker-registry (distribution 2.8) with
 * filesystem storage. Engines treat 127.0.0.0/8 registries as insecure (plain HTTP) by
 * default, so no daemon flag is needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, processesMentioning, readPid, settlesWithin } from './cleanup.js';
import { freePort } from './ports.js';

export interface TestRegistryOptions {
  /** Directory for config, storage and log. Default: a new /tmp/gadr-XXXXXX. */
  dir?: string;
  /** Port on 127.0.0.1. Default: a free one. */
  port?: number;
  /** Copy this storage directory first (e.g. the shared registry's, to get its images). */
  seedFrom?: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the prefix of image references. */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly dir: string;
  /** The storage root (pass it as `seedFrom` to clone this registry's content). */
  readonly storageDir: string;
  readonly logPath: string;
  /** Stop the process, keeping port and data: the registry is "down". */
  pause(): Promise<void>;
  /** Start again on the same port with the same data. */
  resume(): Promise<void>;
  /** Tags of a repository, [] when it does not exist. */
  tags(repository: string): Promise<string[]>;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const DIR_PREFIX = 'gadr-';

/**
 * Remove registry directories of earlier runs whose owner process is dead (killed before
 * its teardown), stopping their registry process if it still runs.
 */
function cleanStaleRegistries(): void {
  for (const name of readdirSync('/tmp')) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join('/tmp', name);
    const owner = readPid(join(dir, 'owner.pid'));
    if (owner === undefined || isAlive(owner)) continue;
    const pid = readPid(join(dir, 'registry.pid'));
    // only if that PID still is our registry (PIDs get reused)
    if (pid !== undefined && processesMentioning(join(dir, 'config.yml')).includes(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  cleanStaleRegistries();
  const dir = opts.dir ?? mkdtempSync(`/tmp/${DIR_PREFIX}`);
  const storageDir = join(dir, 'storage');
  const configPath = join(dir, 'config.yml');
  const logPath = join(dir, 'registry.log');
  mkdirSync(storageDir, { recursive: true });
  writeFileSync(join(dir, 'owner.pid'), `${process.pid}\n`);
  if (opts.seedFrom) cpSync(opts.seedFrom, storageDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  // JSON is YAML; the storage health check is off so a paused/resumed registry answers at once
  const config = {
    version: 0.1,
    log: { level: 'info', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: host },
    health: { storagedriver: { enabled: false } },
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function resume(): Promise<void> {
    if (child) return;
    const started = Date.now();
    // the port can linger for a moment after a pause; retry a few times
    for (let attempt = 1; ; attempt++) {
      const log = openSync(logPath, 'a');
      const proc = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', log, log] });
      closeSync(log);
      let exitInfo: string | undefined;
      exited = new Promise((resolve) => {
        proc.once('exit', (code, signal) => {
          exitInfo = `code ${code} signal ${signal}`;
          if (child === proc) child = undefined;
          resolve();
        });
      });
      proc.once('error', (err) => {
        exitInfo = `spawn error ${err.message}`;
      });
      child = proc;
      writeFileSync(join(dir, 'registry.pid'), `${proc.pid}\n`);
      while (exitInfo === undefined && Date.now() - started < 15_000) {
        const ok = await fetch(`${url}/v2/`).then(
          async (r) => {
            await r.body?.cancel();
            return r.ok;
          },
          () => false,
        );
        if (ok) return;
        await sleep(50);
      }
      if (exitInfo === undefined) proc.kill('SIGKILL');
      await exited;
      child = undefined;
      if (attempt >= 5 || Date.now() - started >= 15_000) {
        const logTail = readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n');
        throw new Error(`test registry on ${host} did not start (${exitInfo ?? 'timeout'})\n--- ${logPath} ---\n${logTail}`);
      }
      await sleep(200);
    }
  }

  async function pause(): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const done = await settlesWithin(exited, 5000);
    if (!done) {
      proc.kill('SIGKILL');
      await exited;
    }
    child = undefined;
  }

  async function tags(repository: string): Promise<string[]> {
    const res = await fetch(`${url}/v2/${repository}/tags/list`);
    if (res.status === 404) return [];
    if (!res.ok) throw new Error(`registry ${host}: tags of ${repository}: HTTP ${res.status}`);
    const body = (await res.json()) as { tags?: string[] | null };
    return body.tags ?? [];
  }

  const onExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.on('exit', onExit);
  await resume();

  return {
    host,
    port,
    url,
    dir,
    storageDir,
    logPath,
    pause,
    resume,
    tags,
    async stop() {
      await pause();
      process.off('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
