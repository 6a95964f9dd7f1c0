/**
 * Live folders: for a service reloaded in place (`x-agent.reload`), its container binds
 * `<files>/live/<key>/<target>` instead of the immutable copy `<files>/<digest>`, and a reload
 * makes that folder hold another copy's content. Each file is written beside its final name
 * (a dot-name no `*.conf` include matches) and renamed over it, so a reader sees the old file
 * or the new one, never half of one; a crash leaves the folder to be synced again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { AgentError, errorMessage } from '../core/errors.js';

export function liveRoot(files: string): string {
  return posix.join(files, 'live');
}

/** The live folder of a container (its creating transaction `key`) for the bind at `target`. */
export function livePath(files: string, key: string, target: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(key) || key.startsWith('.')) throw new AgentError('INTERNAL', `not a transaction id: ${key}`);
  return posix.join(liveRoot(files), key, createHash('sha256').update(target).digest('hex').slice(0, 16));
}

/** Whether `path` is a live folder under `files` (what a reload may rewrite). */
export function isLivePath(files: string, path: string): boolean {
  const rel = posix.relative(liveRoot(files), posix.normalize(path));
  return !rel.startsWith('..') && !posix.isAbsolute(rel) && rel.split('/').length === 2;
}

/** Makes `dst` hold what `src` holds: files replaced by rename, extra entries removed. */
export async function syncTree(src: string, dst: string): Promise<void> {
  try {
    await syncDir(src, dst);
  } catch (err) {
    // The host's trouble (a full disk), not the version's: retried, never held.
    throw new AgentError('STATE_IO', `cannot write the repository's files into ${dst}: ${errorMessage(err)}`, { cause: err, data: { path: dst } });
  }
}

async function syncDir(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true, mode: 0o755 });
  const wanted = await readdir(src, { withFileTypes: true });
  const names = new Set(wanted.map((e) => e.name));
  for (const e of wanted) {
    const from = posix.join(src, e.name);
    const to = posix.join(dst, e.name);
    const there = await lstat(to).catch(() => undefined);
    if (e.isDirectory()) {
      if (there && !there.isDirectory()) await rm(to, { force: true });
      await syncDir(from, to);
      continue;
    }
    if (there?.isDirectory()) await rm(to, { recursive: true, force: true });
    const tmp = posix.join(dst, `.${e.name}.agent-tmp-${randomBytes(4).toString('hex')}`);
    if (e.isSymbolicLink()) {
      await symlink(await readlink(from), tmp);
    } else {
      await copyFile(from, tmp);
      await chmod(tmp, (await stat(from)).mode & 0o777);
    }
    await rename(tmp, to);
  }
  for (const have of await readdir(dst)) if (!names.has(have)) await rm(posix.join(dst, have), { recursive: true, force: true });
}
