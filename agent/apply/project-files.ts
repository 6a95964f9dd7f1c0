import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { AgentError, errorMessage } from '../core/errors.js';
import { lookupProject, ProjectIndex, type ProjectRoots } from '../desired/project-files.js';
import type { ProjectAtRevision, ProjectFilesPort } from '../ports/project-files.js';
import { exportEntries } from '../source/project-tree.js';
import { isLivePath, livePath, liveRoot, syncTree } from './live-files.js';

/**
 * The repository's files as containers bind them: each file or folder copied once per content
 * into `<files>/<digest>` (written to a temporary folder, then renamed: a crash leaves either
 * nothing or the whole copy), never changed afterwards, so a rollback binds the old copy again.
 */
export function createProjectFiles(roots: ProjectRoots, project: (revision: string) => Promise<ProjectAtRevision>): ProjectFilesPort {
  return {
    async prepare(mounts, revision) {
      let at: ProjectAtRevision | undefined;
      for (const m of mounts) {
        if (m.dataDir) {
          // A container can write symbolic links into its data directory; the engine would
          // follow one in another bind's path (./data/root -> /): refused, before and after mkdir.
          await refuseLinks(roots.data, m.source);
          await mkdir(m.source, { recursive: true, mode: 0o755 }).catch((err: unknown) => {
            throw new AgentError('CONTAINER_CREATE_FAILED', `cannot create the data directory ${m.source}: ${errorMessage(err)}`, { cause: err, data: { path: m.source } });
          });
          await refuseLinks(roots.data, m.source);
          continue;
        }
        if (!m.project) continue;
        const folder = posix.join(roots.files, m.project.digest);
        if (await exists(folder)) continue;
        at ??= await project(revision);
        const now = lookupProject(new ProjectIndex(at.tree), m.project.path);
        if (!('digest' in now) || now.digest !== m.project.digest) {
          throw new AgentError('SOURCE_UNAVAILABLE', `${m.project.path} at ${revision} is not what the desired state was read with (it changed since); the next pass reads it again`, { data: { path: m.project.path } });
        }
        await copyInto(folder, (tmp) => exportEntries(at!.tree, m.project!.path, tmp, at!.read));
      }
    },
    async live(key, mount) {
      if (!mount.project || mount.project.kind !== 'dir') throw new AgentError('INTERNAL', `${mount.target} is not a folder of the repository`);
      const path = livePath(roots.files, key, mount.target);
      await syncTree(posix.join(roots.files, mount.project.digest), path);
      return path;
    },
    async syncLive(path, digest) {
      if (!isLivePath(roots.files, path)) throw new AgentError('CONTAINER_CREATE_FAILED', `${path} is not a live folder under ${liveRoot(roots.files)}: refusing to write into it`, { data: { path } });
      const copy = posix.join(roots.files, digest);
      if (!(await exists(copy))) throw new AgentError('CONTAINER_CREATE_FAILED', `the copy ${digest} of the repository's files is gone`, { data: { digest } });
      // A folder made again would not be the one the container binds: it sees the folder it was created with.
      if (!(await exists(path))) throw new AgentError('CONTAINER_CREATE_FAILED', `the live folder ${path} is gone: the container binds a folder that no longer exists; the plan recreates it instead of reloading it`, { data: { path, missing: true } });
      await syncTree(copy, path);
    },
    async pruneLive(keep) {
      const keys = await readdir(liveRoot(roots.files)).catch(() => [] as string[]);
      if (keys.length === 0) return [];
      const kept = await keep();
      const unused = keys.filter((k) => !kept.has(k));
      for (const k of unused) await rm(posix.join(liveRoot(roots.files), k), { recursive: true, force: true });
      return unused;
    },
    async prune(keep) {
      const names = await readdir(roots.files).catch(() => [] as string[]);
      // Copies no spec binds, and the temporary folders of copies a crash interrupted (a pass
      // runs under the state directory's lock: no copy is in progress meanwhile).
      const unused = names.filter((n) => (/^[0-9a-f]{64}$/.test(n) && !keep.has(n)) || /^[0-9a-f]{64}\.tmp-/.test(n));
      for (const n of unused) await rm(posix.join(roots.files, n), { recursive: true, force: true });
      return unused;
    },
  };
}

/** Each component of `path` below `root` that exists must be a directory, not a symbolic link. */
async function refuseLinks(root: string, path: string): Promise<void> {
  const rel = posix.relative(root, path);
  if (rel.startsWith('..') || posix.isAbsolute(rel)) throw new AgentError('CONTAINER_CREATE_FAILED', `the data directory ${path} is not under ${root}`, { data: { path } });
  let at = root;
  for (const part of rel.split('/').filter(Boolean)) {
    at = posix.join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st) return;
    if (st.isSymbolicLink()) throw new AgentError('CONTAINER_CREATE_FAILED', `the data directory ${path} goes through the symbolic link ${at} (a container may have written it): refused, a bind would follow it on the host`, { data: { path: at } });
  }
}

async function copyInto(folder: string, write: (tmp: string) => Promise<unknown>): Promise<void> {
  const tmp = `${folder}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(tmp, { recursive: true, mode: 0o755 });
    await write(tmp);
    await rename(tmp, folder);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (await exists(folder)) return; // another process made the same copy meanwhile
    throw new AgentError('CONTAINER_CREATE_FAILED', `cannot copy the repository's files into ${folder}: ${errorMessage(err)}`, { cause: err, data: { path: folder } });
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}
