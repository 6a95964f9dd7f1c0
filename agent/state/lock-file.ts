import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { AgentError } from '../core/errors.js';

/**
 * An exclusive lock file shared by processes that may live in different PID namespaces: the
 * agent on the host, the agent in its container (where it is pid 1 on every start), `agent
 * backup` run in a second container. A pid alone cannot tell them apart, so the file records
 * the pid, the host name, the PID namespace (`/proc/self/ns/pid`: containers with host
 * networking share the host's name, not its PID namespace) and a token unique to the process.
 *
 * - Same host and namespace, same pid as the caller: held only if the token is this process's
 *   (a container restarted as pid 1 again finds its predecessor's lock, which is stale).
 * - Same host and namespace, other pid: held while that pid is alive.
 * - Other host or namespace (its pids mean nothing here): held while the holder keeps the file's
 *   modification time fresh; it touches it every `HEARTBEAT_MS`, and a file not touched for
 *   `STALE_AFTER_MS` is taken over.
 */
export interface LockRecord {
  pid: number;
  host: string;
  /** PID namespace, e.g. `pid:[4026531836]`; absent in legacy files (taken as this one). */
  ns?: string;
  token: string;
  since: string;
  purpose?: string;
}

export interface HeldLock {
  release(): Promise<void>;
}

export const PROCESS_TOKEN = randomUUID();
export const HEARTBEAT_MS = 30_000;
export const STALE_AFTER_MS = 120_000;

export const PID_NAMESPACE = pidNamespace();

export function ownRecord(purpose: string | undefined, now = new Date()): LockRecord {
  return { pid: process.pid, host: hostname(), ns: PID_NAMESPACE, token: PROCESS_TOKEN, since: now.toISOString(), ...(purpose ? { purpose } : {}) };
}

function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '';
  }
}

/** Creates the lock file if nobody holds it; undefined when it exists already. */
export async function createLockFile(path: string, record: LockRecord): Promise<HeldLock | undefined> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw new AgentError('STATE_IO', `cannot create the lock file ${path}: ${(err as Error).message}`, { cause: err, data: { path } });
  }
  try {
    await fh.writeFile(`${JSON.stringify(record)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  const heartbeat = setInterval(() => {
    const t = new Date();
    utimes(path, t, t).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  return {
    release: async () => {
      clearInterval(heartbeat);
      await unlink(path).catch(() => undefined);
    },
  };
}

/** Reads a lock file, also in the legacy form that held only a pid. */
export async function readLockFile(path: string): Promise<{ record: LockRecord; mtimeMs: number } | undefined> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, mtimeMs] = await Promise.all([readFile(path, 'utf8'), stat(path).then((s) => s.mtimeMs)]);
  } catch {
    return undefined;
  }
  return { record: parseLockRecord(text), mtimeMs };
}

export function parseLockRecord(text: string): LockRecord {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed), host: hostname(), token: '', since: '' };
  try {
    const r = JSON.parse(trimmed) as Partial<LockRecord>;
    return {
      pid: typeof r.pid === 'number' ? r.pid : 0,
      host: typeof r.host === 'string' ? r.host : hostname(),
      ...(typeof r.ns === 'string' ? { ns: r.ns } : {}),
      token: typeof r.token === 'string' ? r.token : '',
      since: typeof r.since === 'string' ? r.since : '',
      ...(typeof r.purpose === 'string' ? { purpose: r.purpose } : {}),
    };
  } catch {
    // Unreadable: just created and not yet written, or torn by a crash (see isLockLive).
    return { pid: 0, host: hostname(), token: '', since: '' };
  }
}

export function isLockLive(record: LockRecord, mtimeMs: number, now = Date.now(), host = hostname(), pid = process.pid, ns = PID_NAMESPACE): boolean {
  if (record.host !== host || (record.ns !== undefined && record.ns !== ns)) return now - mtimeMs < STALE_AFTER_MS;
  // Empty or unreadable: being written this instant, or torn by a crash long ago.
  if (!record.pid) return now - mtimeMs < 5_000;
  if (record.pid === pid) return record.token === PROCESS_TOKEN;
  return isAlive(record.pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock at `path` for `record`: created if absent, taken over if its holder is gone.
 * Returns the live holder's record when someone else holds it.
 */
export async function takeLock(path: string, record: LockRecord): Promise<{ held: HeldLock } | { holder: LockRecord }> {
  let seen: LockRecord | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const held = await createLockFile(path, record);
    if (held) return { held };
    const found = await readLockFile(path);
    if (!found) continue;
    seen = found.record;
    if (isLockLive(found.record, found.mtimeMs)) return { holder: found.record };
    await removeStaleLock(path, found.record);
  }
  // Three races lost in a row: someone else keeps taking it.
  return { holder: seen ?? { pid: 0, host: hostname(), token: '', since: record.since } };
}

/** Removes a lock file only if it still holds `record` (no race with a process that just took it). */
async function removeStaleLock(path: string, seen: LockRecord): Promise<void> {
  const now = await readLockFile(path);
  if (now && (now.record.token !== seen.token || now.record.pid !== seen.pid || now.record.host !== seen.host || now.record.ns !== seen.ns)) return;
  await unlink(path).catch(() => undefined);
}
