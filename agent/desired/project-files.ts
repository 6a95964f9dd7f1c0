import { posix } from 'node:path';
import { canonicalJson, sha256Hex } from '../core/canonical.js';
import type { ProjectMount } from '../model/desired.js';
import type { ProjectEntry, ProjectTree } from '../model/source.js';

/**
 * Where the files of the project directory go on the host. `files`: immutable copies of the
 * repository's files and folders, one folder per content digest; `data`: the directories a
 * relative bind names that the repository does not hold (Compose creates those beside the file;
 * the agent under `<data>/<stack>/`), kept across updates.
 */
export interface ProjectRoots {
  files: string;
  data: string;
}

export function projectRootsIn(stateDir: string): ProjectRoots {
  return { files: posix.join(stateDir, 'project-files'), data: posix.join(stateDir, 'project-data') };
}

/** The project directory's entries by path. */
export class ProjectIndex {
  private readonly byPath: Map<string, ProjectEntry>;

  constructor(readonly tree: ProjectTree | undefined) {
    this.byPath = new Map((tree?.entries ?? []).map((e) => [e.path, e]));
  }

  get(path: string): ProjectEntry | undefined {
    return path === '.' ? { path: '.', kind: 'dir', id: '', size: 0 } : this.byPath.get(path);
  }

  /** Every entry under a directory (`.`: the whole project), sorted by path. */
  under(dir: string): ProjectEntry[] {
    const prefix = dir === '.' ? '' : `${dir}/`;
    return [...this.byPath.values()].filter((e) => e.path.startsWith(prefix)).sort((a, b) => a.path.localeCompare(b.path));
  }
}

/**
 * A path of the Compose file relative to the project directory, as Compose resolves it; refused
 * when it leaves the directory or names a home directory.
 */
export function projectPath(raw: string): { path: string } | { error: string } {
  if (raw === '~' || raw.startsWith('~/')) return { error: `not supported: "${raw}": a path in the home directory of whoever runs Compose; the agent is not that user: write the absolute path` };
  if (posix.isAbsolute(raw)) return { path: raw };
  const path = posix.normalize(raw).replace(/\/+$/, '') || '.';
  if (path === '..' || path.startsWith('../')) return { error: `"${raw}" leaves the desired-state directory: the agent reads only what the repository holds there` };
  return { path };
}

export type ProjectRef = { kind: 'file' | 'dir'; digest: string } | { kind: 'missing' } | { error: string };

/**
 * What a relative path names in the project: a file or a directory of the repository (with the
 * digest of its content, which changes when any file under it does), or nothing.
 */
export function lookupProject(index: ProjectIndex, path: string): ProjectRef {
  const tooMany = { error: `"${path}" is not among the first entries of the desired-state directory the agent reads (it holds too many files): keep the directory small` };
  const entry = index.get(path);
  if (!entry) {
    if (index.tree?.truncated) return tooMany;
    // A folder on the way that is a link: the path is not missing, it is behind a link.
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = index.get(parts.slice(0, i).join('/'));
      if (parent?.kind === 'symlink') return { error: `"${path}" is under "${parent.path}", a symbolic link (to ${parent.id}): the agent does not follow links out of the repository; commit the folder itself` };
    }
    return { kind: 'missing' };
  }
  if (entry.kind === 'symlink') return { error: `"${path}" is a symbolic link (to ${entry.id}): the agent does not follow links out of the repository; commit the file itself` };
  // The name is part of the digest: the copy holds the file under its name.
  if (entry.kind === 'file') return { kind: 'file', digest: sha256Hex(canonicalJson(['file', entry.id, entry.executable === true, posix.basename(path)])) };
  // A folder of a tree read only in part would be copied in part.
  if (index.tree?.truncated) return tooMany;
  const entries = index.under(path);
  const prefix = path === '.' ? '' : `${path}/`;
  for (const e of entries) {
    if (e.kind !== 'symlink') continue;
    const to = posix.normalize(posix.join(posix.dirname(e.path), e.id));
    const inside = path === '.' ? !to.startsWith('..') : to === path || to.startsWith(prefix);
    if (posix.isAbsolute(e.id) || !inside) return { error: `"${e.path}" is a symbolic link to ${e.id}, outside "${path}": the agent does not follow links out of the folder it binds` };
  }
  return { kind: 'dir', digest: sha256Hex(canonicalJson(['dir', entries.map((e) => [e.path.slice(prefix.length), e.kind, e.id, e.executable === true])])) };
}

/** The host path a repository file or folder is bound from: its folder under the roots, named by digest. */
export function materialisedPath(roots: ProjectRoots, m: ProjectMount): string {
  const folder = posix.join(roots.files, m.digest);
  return m.kind === 'dir' ? folder : posix.join(folder, posix.basename(m.path));
}

/** The host path of a relative bind the repository does not hold: a data directory of the stack. */
export function dataPath(roots: ProjectRoots, stack: string, path: string): string {
  return posix.join(roots.data, stack, path);
}
