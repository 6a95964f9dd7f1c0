import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { watch as chokidarWatch } from 'chokidar';
import { sha256Hex } from '../core/canonical.js';
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
export function createLocalDirSource(dir: string, options: { debounceMs?: number } = {}): DesiredSource {
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
      for (const name of names) {
        const path = join(root, name);
        const st = await lstat(path).catch(() => undefined);
        if (!st?.isFile()) continue;
        if (st.size > READ_LIMIT_BYTES) files.push({ path: name, content: '', bytes: st.size });
        else files.push({ path: name, content: await readFile(path, 'utf8') });
      }
      // renovate.json beside the directory (the repository's root) or in it: quarantine rules and policies.
      let renovate: { path: string; content: string } | undefined;
      for (const candidate of [join(root, '..', 'renovate.json'), join(root, 'renovate.json')]) {
        const content = await readFile(candidate, 'utf8').catch(() => undefined);
        if (content !== undefined) {
          renovate = { path: candidate, content };
          break;
        }
      }
      const digest = sha256Hex([...files.map((f) => `${f.path}\0${f.bytes ?? ''}\0${f.content}`), renovate?.content ?? ''].join('\0'));
      return { revision: asRevision(`dir:${digest.slice(0, 12)}`), files, ...(renovate ? { renovateConfig: renovate } : {}) };
    },
    async watch(onChange) {
      let timer: NodeJS.Timeout | undefined;
      const watcher = chokidarWatch(root, { ignoreInitial: true, depth: 0, awaitWriteFinish: false });
      watcher.on('all', (_event, path) => {
        if (!YAML_FILE.test(path.split('/').pop() ?? '')) return;
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
