/**
 * A small tmpfs mounted under /tmp, to simulate a full disk (ENOSPC) for a local backup
 * store: writes beyond `sizeBytes` (rounded up to whole 4 KiB pages by the kernel) fail with
 * ENOSPC. Needs root (mount/umount). Directories are named /tmp/gadtfs-<pid>-XXXXXX so a
 * later run can unmount and remove the ones of a test process that died before cleanup.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from './cleanup.js';

const run = promisify(execFile);
const PREFIX = 'gadtfs-';

export interface TmpfsMount {
  /** The mount point (empty, writable by root). */
  dir: string;
  /** Unmount and remove the mount point; idempotent. */
  unmount(): Promise<void>;
}

function isMounted(dir: string): boolean {
  // /proc/mounts escapes blanks as \040: our paths have none
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === dir);
}

async function umount(dir: string): Promise<void> {
  if (!isMounted(dir)) return;
  try {
    await run('umount', [dir]);
  } catch {
    // still busy (an open file of a test that failed): detach it now, freed once closed
    await run('umount', ['-l', dir]);
  }
}

/** Unmount and remove mount points left by test processes that are gone. */
async function cleanStale(): Promise<void> {
  for (const name of readdirSync('/tmp')) {
    const m = name.startsWith(PREFIX) ? /^gadtfs-(\d+)-/.exec(name) : null;
    if (!m || isAlive(Number(m[1]))) continue;
    const dir = join('/tmp', name);
    try {
      await umount(dir);
      rmdirSync(dir);
    } catch {
      // not ours to fight over: leave it
    }
  }
}

/** Mount a tmpfs of `sizeBytes` on a new directory under /tmp. */
export async function mountTmpfs(sizeBytes: number): Promise<TmpfsMount> {
  if (!Number.isInteger(sizeBytes) || sizeBytes <= 0) throw new Error(`mountTmpfs: bad size ${sizeBytes}`);
  await cleanStale();
  const dir = mkdtempSync(`/tmp/${PREFIX}${process.pid}-`);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir]);
  } catch (err) {
    rmdirSync(dir);
    const e = err as Error & { stderr?: string };
    throw new Error(`mountTmpfs: mount -t tmpfs on ${dir} failed (root needed): ${e.stderr?.trim() || e.message}`);
  }
  let done = false;
  return {
    dir,
    async unmount() {
      if (done) return;
      await umount(dir);
      rmdirSync(dir);
      done = true;
    },
  };
}
