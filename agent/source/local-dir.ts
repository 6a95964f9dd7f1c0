import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { watch as chokidarWatch } from 'chokidar';
import { createHash } from 'node:crypto';
import { sha256Hex } from '../core/canonical.js';
import { dirProjectTree } from './project-tree.js';
import { AgentError } from '../core/errors.js';
import { asRevision } from '../core/ids.js';
import type { SourceFile } from '../model/source.js';
import type { DesiredSource } from '../ports/source.js';
import type { SourceSnapshot } from '../model/source.js';

const YAML_FILE = /^[^.].*\.ya?ml$/;
/** Files larger than this are not even read; the loader reports them by size. */
const READ_LIMIT_BYTES = 4 * 1024 * 1024;

/**
 * Desired state from a local directory: every `*.yaml` / `*.yml` file at its top level
 * (regular files only: a symlink could point anywhere). The revision is a digest of the file
 * names and contents, so it changes exactly when the desired state does.
 */
export interface LocalDirOptions {
  debounceMs?: number;
  /** Where renovate.json is (`source.renovateConfig`); by default the directory's parent (the repository's root), then the directory itself. */
  renovateConfig?: string | undefined;
}

export function createLocalDirSource(dir: string, options: LocalDirOptions = {}): DesiredSource {
  const root = resolve(dir);
  return {
    kind: 'dir',
    location: root,
    async read(): Promise<SourceSnapshot> {
      let names: string[];
      try {
        names = (await readdir(root)).filter((n) => YAML_FILE.test(n)).sort();
      } catch (err) {
        throw new AgentError('SOURCE_UNAVAILABLE', `cannot read desired-state directory ${root}: ${(err as Error).message}`, { cause: err });
      }
      const files: SourceFile[] = [];
      const refusedFiles: { path: string; why: string }[] = [];
      for (const name of names) {
        const path = join(root, name);
        const st = await lstat(path).catch(() => undefined);
        if (!st) continue; // removed between readdir and lstat: the next read sees the directory as it is
        if (st.isSymbolicLink()) {
          const to = await readlink(path).catch(() => '?');
          refusedFiles.push({ path: name, why: `is a symbolic link (to ${to}), which the agent does not follow: a link could point anywhere on the host. Put the file itself in the directory.` });
          continue;
        }
        if (!st.isFile()) {
          refusedFiles.push({ path: name, why: 'is not a regular file (a directory or a device): not read' });
          continue;
        }
        if (st.size > READ_LIMIT_BYTES) files.push({ path: name, content: '', bytes: st.size });
        else files.push({ path: name, content: await readFile(path, 'utf8') });
      }
      // The project's .env, beside the Compose files, as Compose reads it (a regular file only).
      const envPath = join(root, '.env');
      const envStat = await lstat(envPath).catch(() => undefined);
      let dotEnv: SourceFile | undefined;
      if (envStat?.isSymbolicLink()) refusedFiles.push({ path: '.env', why: 'is a symbolic link, which the agent does not follow: put the file itself in the directory' });
      else if (envStat?.isFile()) dotEnv = { path: '.env', content: await readFile(envPath, 'utf8') };
      // renovate.json beside the directory (the repository's root) or in it: quarantine rules and policies.
      let renovate: { path: string; content: string } | undefined;
      for (const candidate of options.renovateConfig ? [resolve(options.renovateConfig)] : [join(root, '..', 'renovate.json'), join(root, 'renovate.json')]) {
        const content = await readFile(candidate, 'utf8').catch(() => undefined);
        if (content !== undefined) {
          renovate = { path: candidate, content };
          break;
        }
      }
      // Every file of the directory counts: a changed configuration file is a new revision too.
      const tree = await dirProjectTree(root);
      const treeDigest = sha256Hex(tree.entries.map((e) => `${e.path}\0${e.kind}\0${e.id}\0${e.executable === true}`).join('\0'));
      const digest = sha256Hex([...files.map((f) => `${f.path}\0${f.bytes ?? ''}\0${f.content}`), renovate?.content ?? '', dotEnv ? `.env\0${dotEnv.content}` : '', treeDigest].join('\0'));
      const digest2 = refusedFiles.length > 0 ? sha256Hex(`${digest}\0${refusedFiles.map((f) => `${f.path}\0${f.why}`).join('\0')}`) : digest;
      return { revision: asRevision(`dir:${digest2.slice(0, 12)}`), files, tree, ...(dotEnv ? { dotEnv } : {}), ...(refusedFiles.length > 0 ? { refusedFiles } : {}), ...(renovate ? { renovateConfig: renovate } : {}) };
    },
    async project() {
      // A directory has no history: its content now; the caller checks the digest it expects.
      const tree = await dirProjectTree(root);
      return {
        tree,
        async read(e) {
          const bytes = await readFile(join(root, e.path));
          if (createHash('sha256').update(bytes).digest('hex') !== e.id) throw new AgentError('SOURCE_UNAVAILABLE', `${e.path} changed while it was copied; the next pass reads it again`);
          return bytes;
        },
      };
    },
    async watch(onChange) {
      let timer: NodeJS.Timeout | undefined;
      // Any file counts (configuration files the desired state binds too), but not Git's own.
      const watcher = chokidarWatch(root, { ignoreInitial: true, awaitWriteFinish: false, ignored: (p: string) => p.split('/').includes('.git') });
      watcher.on('all', () => {
        clearTimeout(timer);
        timer = setTimeout(onChange, options.debounceMs ?? 300);
      });
      await new Promise<void>((ready) => watcher.once('ready', () => ready()));
      return async () => {
        clearTimeout(timer);
        await watcher.close();
      };
    },
  };
}
