import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PROJECT_TREE_LIMITS, type ProjectEntry, type ProjectTree } from '../model/source.js';
import type { GitReader } from '../ports/git.js';

/** Text of small files is kept (env_file reads it), up to this much in all. */
const CONTENT_BUDGET_BYTES = 8 * 1024 * 1024;

function withContent(entry: ProjectEntry, bytes: Buffer, budget: { left: number }): ProjectEntry {
  if (bytes.length > PROJECT_TREE_LIMITS.contentBytes || bytes.length > budget.left) return entry;
  budget.left -= bytes.length;
  return { ...entry, content: bytes.toString('utf8') };
}

/** The project directory of a Git commit: every entry under `dir`, files by blob id. */
export async function gitProjectTree(repo: GitReader, sha: string, dir: string): Promise<ProjectTree> {
  const walked = await repo.walkTree(sha, dir, PROJECT_TREE_LIMITS.entries);
  const budget = { left: CONTENT_BUDGET_BYTES };
  const entries: ProjectEntry[] = [];
  for (const e of walked.entries) {
    if (e.type === 'tree') {
      entries.push({ path: e.path, kind: 'dir', id: '', size: 0 });
      continue;
    }
    const blob = await repo.readBlob(e.oid);
    if (e.mode === '120000') entries.push({ path: e.path, kind: 'symlink', id: blob.toString('utf8'), size: blob.length });
    else entries.push(withContent({ path: e.path, kind: 'file', id: e.oid, size: blob.length, ...(e.mode === '100755' ? { executable: true } : {}) }, blob, budget));
  }
  return walked.truncated ? { entries, truncated: true } : { entries };
}

/** The project directory on disk: every entry under `root` but `.git`, files by SHA-256 of their content. */
export async function dirProjectTree(root: string): Promise<ProjectTree> {
  const entries: ProjectEntry[] = [];
  const budget = { left: CONTENT_BUDGET_BYTES };
  const visit = async (rel: string): Promise<boolean> => {
    const names = (await readdir(join(root, rel)).catch(() => [] as string[])).sort();
    for (const name of names) {
      if (rel === '' && name === '.git') continue;
      if (entries.length >= PROJECT_TREE_LIMITS.entries) return false;
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, path)).catch(() => undefined);
      if (!st) continue;
      if (st.isSymbolicLink()) entries.push({ path, kind: 'symlink', id: await readlink(join(root, path)).catch(() => '?'), size: 0 });
      else if (st.isDirectory()) {
        entries.push({ path, kind: 'dir', id: '', size: 0 });
        if (!(await visit(path))) return false;
      } else if (st.isFile()) {
        const bytes = await readFile(join(root, path));
        entries.push(withContent({ path, kind: 'file', id: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, ...((st.mode & 0o111) !== 0 ? { executable: true } : {}) }, bytes, budget));
      }
    }
    return true;
  };
  const complete = await visit('');
  return complete ? { entries } : { entries, truncated: true };
}

/** Where the bytes of an exported entry come from. */
export type ReadEntry = (e: ProjectEntry) => Promise<Buffer>;

/**
 * Writes a file or folder of the project into `dest` (a new, empty folder): a folder's entries
 * into it, a file under its own name. Returns what was written, for the caller to check the
 * digest against the one the desired state was loaded with.
 */
export async function exportEntries(tree: ProjectTree, path: string, dest: string, read: ReadEntry): Promise<ProjectEntry[]> {
  const entry = tree.entries.find((e) => e.path === path);
  if (path !== '.' && entry?.kind === 'file') {
    await writeEntry(join(dest, posix.basename(path)), entry, await read(entry));
    return [entry];
  }
  const prefix = path === '.' ? '' : `${path}/`;
  const inside = tree.entries.filter((e) => e.path.startsWith(prefix)).sort((a, b) => a.path.localeCompare(b.path));
  for (const e of inside) {
    const to = join(dest, e.path.slice(prefix.length));
    if (e.kind === 'dir') await mkdir(to, { recursive: true, mode: 0o755 });
    else if (e.kind === 'symlink') await symlink(e.id, to);
    else await writeEntry(to, e, await read(e));
  }
  return inside;
}

async function writeEntry(to: string, e: ProjectEntry, bytes: Buffer): Promise<void> {
  await mkdir(posix.dirname(to), { recursive: true, mode: 0o755 });
  // On disk before the folder is renamed into place: a power cut never leaves a complete-looking copy with empty files.
  const fd = await open(to, 'w', e.executable ? 0o755 : 0o644);
  try {
    await fd.writeFile(bytes);
    await fd.sync();
  } finally {
    await fd.close();
  }
  await chmod(to, e.executable ? 0o755 : 0o644);
}
