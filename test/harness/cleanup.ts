/**
 * Low-level clean-up for private test engines: processes, mounts and cgroups that a dockerd
 * (or a dockerd killed with SIGKILL) leaves behind. Everything is found through the engine's
 * own unique directory, so nothing outside the test run is ever touched.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/** Marker file that says "this directory is a test engine of this harness". */
export const ENGINE_MARKER = '.gadt-engine';
/** Prefix of default engine directories (short: unix socket paths are limited to 108 bytes). */
export const ENGINE_DIR_PREFIX = '/tmp/gadt-';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Alive and not a zombie (a zombie passes kill(pid, 0) until its new parent reaps it). */
export function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * PIDs whose command line mentions one of `tokens`: the dockerd, its managed containerd and
 * the containerd shims all carry the engine's directory or its containerd namespace.
 */
export function processesMentioning(...tokens: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.some((arg) => tokens.some((t) => arg.includes(t)))) pids.push(Number(entry));
    } catch {
      // the process exited while we were looking
    }
  }
  return pids;
}

/** Mount points at or under `dir`, deepest first (the order they must be unmounted in). */
export function mountsUnder(dir: string): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    // mountinfo escapes spaces etc. as octal; our paths never contain them
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

export function unmountAll(dir: string): void {
  for (const m of mountsUnder(dir)) {
    try {
      execFileSync('umount', [m], { stdio: 'pipe' });
    } catch {
      // busy or already gone: a lazy unmount at least detaches it so the rm can proceed
      try {
        execFileSync('umount', ['-l', m], { stdio: 'pipe' });
      } catch {
        /* ignore: reported by the rm below if it matters */
      }
    }
  }
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Every cgroup directory named `name` directly under a controller (v1) or the v2 root. */
function cgroupDirs(name: string): string[] {
  // guard: an empty or odd name would point at the root cgroup, i.e. every process
  if (!/^gadt-[a-z0-9]+$/.test(name)) throw new Error(`refusing to touch cgroup ${JSON.stringify(name)}`);
  if (!existsSync(CGROUP_ROOT)) return [];
  const dirs = [join(CGROUP_ROOT, name)];
  for (const ctl of readdirSync(CGROUP_ROOT)) dirs.push(join(CGROUP_ROOT, ctl, name));
  return dirs.filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** Kill container processes still in the engine's cgroup parent (after a SIGKILLed daemon). */
export function killCgroupProcesses(name: string): void {
  const walk = (d: string): void => {
    for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  for (const d of cgroupDirs(name)) walk(d);
}

/** Remove the (empty) cgroup directories the engine's --cgroup-parent created. */
export function removeCgroups(name: string): void {
  const rm = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(join(d, e.name));
    try {
      rmdirSync(d);
    } catch {
      /* still busy: leave it, it is harmless */
    }
  };
  for (const d of cgroupDirs(name)) rm(d);
}

/** True if `p` settles within `ms`; the timer is cleared so it cannot keep the process alive. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitForExit(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * Kill whatever still runs from `dir` (e.g. containerd and shims outliving a SIGKILLed
 * dockerd), unmount, drop cgroups and delete the directory. `cgroupName` is also the
 * engine's containerd namespace.
 */
export async function destroyEngineDir(dir: string, cgroupName: string): Promise<void> {
  killCgroupProcesses(cgroupName);
  const leftovers = processesMentioning(dir, cgroupName);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await waitForExit(leftovers, 5000);
  unmountAll(dir);
  removeCgroups(cgroupName);
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Delete engine directories of earlier runs whose owner process is dead (a run that was
 * killed before its teardown). Only directories carrying our marker file are considered.
 */
export async function cleanStaleEngines(): Promise<void> {
  const parent = ENGINE_DIR_PREFIX.slice(0, ENGINE_DIR_PREFIX.lastIndexOf('/')) || '/';
  const base = ENGINE_DIR_PREFIX.slice(parent.length + 1);
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(base)) continue;
    const dir = join(parent, name);
    const marker = join(dir, ENGINE_MARKER);
    if (!existsSync(marker)) continue;
    const owner = readPid(join(dir, 'owner.pid'));
    if (owner === undefined || isAlive(owner)) continue;
    const cgroup = readFileSync(marker, 'utf8').trim();
    await destroyEngineDir(dir, cgroup).catch(() => undefined);
  }
}
