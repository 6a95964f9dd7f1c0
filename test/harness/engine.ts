/**
 * A private Docker engine for tests: its own dockerd with its own data-root, exec-root,
 * socket and cgroup parent, so tests never see or touch any other engine's containers.
 * Root is required (dockerd), as on the test machines.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import Docker from 'dockerode';
import {
  ENGINE_DIR_PREFIX,
  ENGINE_MARKER,
  cleanStaleEngines,
  destroyEngineDir,
  isRunning,
  readPid,
  settlesWithin,
  unmountAll,
} from './cleanup.js';

export interface TestEngineOptions {
  /** Engine directory (created if missing). Default: /tmp/gadt-<random>. Keep it short. */
  dir?: string;
  /** Start dockerd with --live-restore (containers survive a daemon restart). */
  liveRestore?: boolean;
  /** dockerd binary. Default $GADT_DOCKERD or `dockerd` from PATH (+ /usr/sbin). */
  dockerd?: string;
  /** How long to wait for /_ping before failing. Default 30 s. */
  readyTimeoutMs?: number;
}

export interface TestEngine {
  readonly dir: string;
  readonly socketPath: string;
  /** `unix://<socketPath>`, for DOCKER_HOST and for the agent's configuration. */
  readonly dockerHost: string;
  readonly docker: Docker;
  readonly logPath: string;
  /** The link-local block its networks come from, e.g. `169.254.232.0/22` (in /28s). */
  readonly addressPool: string;
  /** PID of the running dockerd, undefined while it is stopped. */
  readonly pid: number | undefined;
  /** Stop the daemon (keeping data); SIGKILL simulates a crash (containerd/shims live on). */
  stopDaemon(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Start the daemon again on the same socket and data. */
  startDaemon(): Promise<void>;
  /** stopDaemon + optional pause + startDaemon. */
  restart(opts?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>;
  /** Remove all containers, stop the daemon, unmount and delete the directory. */
  stop(): Promise<void>;
}

/**
 * Pre-created bridge with a link-local /30: dockerd needs a default bridge, and giving it this
 * one means no 172.x network appears and the host's docker0 is never touched (with
 * --bridge=none dockerd would DELETE docker0). Shared by all test engines: every test
 * container uses host networking, so the bridge carries no traffic.
 */
const BRIDGE = 'gadt0';
const BRIDGE_CIDR = '169.254.231.1/30';
/** Pool for networks someone creates by mistake: link-local rather than 172.16/12. */
/**
 * Link-local /22 blocks for the engines' networks (the network rule: 169.254.0.0/16, never
 * 169.254.169.0/24): each engine that runs at once gets its own, so that networks of two engines
 * in one network namespace never overlap. The block is recorded in the engine's directory.
 */
const POOL_BLOCKS = [232, 236, 240, 244, 248, 224, 228, 216, 220];
const POOL_FILE = 'address-pool';

function claimAddressPool(dir: string): string {
  const used = new Set<string>();
  for (const name of readdirSync('/tmp')) {
    const other = `/tmp/${name}`;
    if (!other.startsWith(ENGINE_DIR_PREFIX) || other === dir) continue;
    const owner = readPid(join(other, 'owner.pid'));
    if (owner === undefined || !isRunning(owner)) continue;
    try {
      used.add(readFileSync(join(other, POOL_FILE), 'utf8').trim());
    } catch {
      // an engine that has not claimed a block yet, or an older one (the default block)
      used.add(`base=169.254.${POOL_BLOCKS[0]}.0/22,size=28`);
    }
  }
  const pool = POOL_BLOCKS.map((b) => `base=169.254.${b}.0/22,size=28`).find((p) => !used.has(p));
  if (!pool) throw new Error(`no free link-local address block for another test engine (${used.size} in use)`);
  writeFileSync(join(dir, POOL_FILE), `${pool}\n`);
  return pool;
}

function ensureBridge(): void {
  if (!existsSync(`/sys/class/net/${BRIDGE}`)) {
    try {
      execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { stdio: 'pipe' });
    } catch (err) {
      // another engine may have created it concurrently
      if (!existsSync(`/sys/class/net/${BRIDGE}`)) throw new Error(`cannot create bridge ${BRIDGE}: ${String(err)}`);
    }
  }
  // without an address dockerd would pick one from 172.17/16 and put it on the bridge
  const addrs = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', BRIDGE], { encoding: 'utf8' });
  if (!addrs.includes(` ${BRIDGE_CIDR} `)) {
    try {
      execFileSync('ip', ['addr', 'add', BRIDGE_CIDR, 'dev', BRIDGE], { stdio: 'pipe' });
    } catch {
      const again = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', BRIDGE], { encoding: 'utf8' });
      if (!again.includes(` ${BRIDGE_CIDR} `)) throw new Error(`cannot give ${BRIDGE} the address ${BRIDGE_CIDR}`);
    }
  }
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startTestEngine(opts: TestEngineOptions = {}): Promise<TestEngine> {
  if (process.getuid?.() !== 0) throw new Error('startTestEngine: dockerd needs root; run the integration tests as root');
  await cleanStaleEngines();

  const dir = opts.dir ?? `${ENGINE_DIR_PREFIX}${randomBytes(4).toString('hex')}`;
  const id = `gadt-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
  const socketPath = join(dir, 'docker.sock');
  if (Buffer.byteLength(socketPath) > 100) throw new Error(`engine socket path too long for a unix socket: ${socketPath}`);
  const running = readPid(join(dir, 'dockerd.pid'));
  if (running !== undefined && isRunning(running)) throw new Error(`a dockerd (pid ${running}) already uses ${dir}`);
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const logPath = join(dir, 'dockerd.log');
  mkdirSync(dataRoot, { recursive: true });
  mkdirSync(execRoot, { recursive: true });
  // owner first: a concurrent stale-dir sweep must never see a marker without a live owner
  writeFileSync(join(dir, 'owner.pid'), `${process.pid}\n`);
  writeFileSync(join(dir, ENGINE_MARKER), `${id}\n`);

  const pool = claimAddressPool(dir);
  const args = [
    `--data-root=${dataRoot}`,
    `--exec-root=${execRoot}`,
    `--pidfile=${join(dir, 'dockerd.pid')}`,
    `--host=unix://${socketPath}`,
    `--bridge=${BRIDGE}`,
    '--iptables=false',
    '--ip6tables=false',
    '--ip-masq=false',
    `--default-address-pool=${pool}`,
    `--cgroup-parent=/${id}`,
    // if a system containerd runs, dockerd 20.10 uses it: keep our objects apart from "moby"
    `--containerd-namespace=${id}`,
    `--containerd-plugins-namespace=${id}-plugins`,
    ...(opts.liveRestore ? ['--live-restore'] : []),
  ];
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const dockerd = opts.dockerd ?? process.env.GADT_DOCKERD ?? 'dockerd';
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}` };
  delete env.DOCKER_HOST;

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  // a test run that dies without teardown should at least not leave dockerd running
  const onExit = (): void => {
    child?.kill('SIGTERM');
  };
  process.on('exit', onExit);

  async function startDaemon(): Promise<void> {
    if (child) return;
    ensureBridge();
    const log = openSync(logPath, 'a');
    const started = Date.now();
    const proc = spawn(dockerd, args, { stdio: ['ignore', log, log], env });
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
    while (!(await ping(socketPath))) {
      if (exitInfo !== undefined || Date.now() - started > readyTimeoutMs) {
        const why = exitInfo !== undefined ? `dockerd exited (${exitInfo})` : `no answer on /_ping after ${readyTimeoutMs} ms`;
        if (exitInfo === undefined) proc.kill('SIGKILL');
        await exited;
        throw new Error(`test engine in ${dir} did not start: ${why}\n--- tail of ${logPath} ---\n${tail(logPath)}`);
      }
      await sleep(100);
    }
  }

  async function stopDaemon(o: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    const proc = child;
    if (!proc) return;
    proc.kill(o.signal ?? 'SIGTERM');
    // dockerd stops running containers on shutdown (15 s grace by default)
    const done = await settlesWithin(exited, 40_000);
    if (!done) {
      proc.kill('SIGKILL');
      await exited;
    }
    child = undefined;
    await forgetDeadContainerd();
    // dockerd leaves the bind mount of the host netns behind; a restart would stack another
    unmountAll(join(execRoot, 'netns', 'default'));
  }

  /**
   * dockerd kills its managed containerd when it dies (SIGKILL included), but the pidfile
   * stays and the dead containerd may linger as a zombie until PID 1 reaps it. dockerd then
   * believes containerd is "still running" and times out connecting to it: drop the pidfile.
   */
  async function forgetDeadContainerd(): Promise<void> {
    const pidFile = join(execRoot, 'containerd', 'containerd.pid');
    const pid = readPid(pidFile);
    if (pid === undefined) return;
    const deadline = Date.now() + 5000;
    while (isRunning(pid) && Date.now() < deadline) await sleep(50);
    if (!isRunning(pid)) rmSync(pidFile, { force: true });
  }

  async function stop(): Promise<void> {
    if (child) {
      // force-removing first makes the shutdown fast (no per-container stop grace period)
      try {
        const all = await docker.listContainers({ all: true });
        await Promise.all(all.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
      } catch {
        /* daemon unhealthy: the directory clean-up below still kills everything */
      }
      await stopDaemon();
    }
    process.off('exit', onExit);
    await destroyEngineDir(dir, id);
  }

  const docker = new Docker({ socketPath });
  try {
    await startDaemon();
  } catch (err) {
    process.off('exit', onExit);
    await destroyEngineDir(dir, id); // the error already carries the log's tail
    throw err;
  }
  return {
    dir,
    addressPool: /base=([^,]+)/.exec(pool)?.[1] ?? pool,
    socketPath,
    dockerHost: `unix://${socketPath}`,
    docker,
    logPath,
    get pid() {
      return child?.pid;
    },
    stopDaemon,
    startDaemon,
    async restart(o = {}) {
      await stopDaemon(o);
      if (o.downMs) await sleep(o.downMs);
      await startDaemon();
    },
    stop,
  };
}
