import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AgentError, errorMessage } from '../../core/errors.js';
import { syncDir, writeFileAtomic } from '../../state/atomic-file.js';
import type { BackupStore, StoredObject } from '../../ports/backup-store.js';

/**
 * Backups in a local directory (the embedded default). Each object is written to a temporary
 * name, fsynced and renamed: an interrupted write never leaves a file under its final name.
 */
export function createLocalStore(root: string): BackupStore {
  const path = (key: string) => {
    if (key.split('/').some((p) => p === '..' || p === '')) throw new AgentError('BACKUP_FAILED', `invalid backup key ${key}`);
    return join(root, ...key.split('/'));
  };
  const fail = (what: string, err: unknown) =>
    err instanceof AgentError ? err : new AgentError('BACKUP_FAILED', `local store ${root}: ${what}: ${errorMessage(err)}${(err as NodeJS.ErrnoException).code === 'ENOSPC' ? ' (disk full)' : ''}`, { cause: err, data: { errno: (err as NodeJS.ErrnoException).code } });
  return {
    kind: 'local',
    location: root,
    async check() {
      try {
        await mkdir(root, { recursive: true, mode: 0o700 });
        const probe = join(root, `.probe-${randomBytes(4).toString('hex')}`);
        const fh = await open(probe, 'w', 0o600);
        await fh.close();
        await unlink(probe);
      } catch (err) {
        throw fail('not writable', err);
      }
    },
    async put(key, body, signal) {
      const final = path(key);
      const tmp = `${final}.partial-${randomBytes(4).toString('hex')}`;
      let bytes = 0;
      try {
        await mkdir(dirname(final), { recursive: true, mode: 0o700 });
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            cb(null, chunk);
          },
        });
        await pipeline(body, counter, createWriteStream(tmp, { mode: 0o600 }), { signal });
        const fh = await open(tmp, 'r+');
        await fh.sync();
        await fh.close();
        await rename(tmp, final);
        await syncDir(dirname(final));
        return { bytes };
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw fail(`writing ${key}`, err);
      }
    },
    async putSmall(key, data) {
      try {
        await writeFileAtomic(path(key), data, 0o600);
      } catch (err) {
        throw fail(`writing ${key}`, err);
      }
    },
    async get(key) {
      const p = path(key);
      try {
        await stat(p);
      } catch (err) {
        throw fail(`reading ${key}`, err);
      }
      return createReadStream(p) as Readable;
    },
    async getSmall(key) {
      try {
        return await readFile(path(key), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw fail(`reading ${key}`, err);
      }
    },
    async list(prefix) {
      const out: StoredObject[] = [];
      const walk = async (dir: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw fail('listing', err);
        }
        for (const e of entries) {
          const full = join(dir, e.name);
          if (e.isDirectory()) await walk(full);
          else if (e.isFile() && !e.name.startsWith('.probe-')) out.push({ key: relative(root, full).split(sep).join('/'), size: (await stat(full)).size });
        }
      };
      await walk(prefix.replace(/\/+$/, '') ? path(prefix.replace(/\/+$/, '')) : root);
      return out.sort((a, b) => a.key.localeCompare(b.key));
    },
    async delete(keys) {
      const dirs = new Set<string>();
      for (const key of keys) {
        await unlink(path(key)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw fail(`deleting ${key}`, err);
        });
        dirs.add(dirname(path(key)));
      }
      // Remove directories left empty, up to the root.
      for (let dir of [...dirs].sort((a, b) => b.length - a.length)) {
        while (dir.startsWith(root) && dir !== root) {
          try {
            await rmdir(dir);
          } catch {
            break;
          }
          dir = dirname(dir);
        }
      }
    },
  };
}
