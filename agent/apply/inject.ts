import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import type { InjectedFile } from '../model/desired.js';

/**
 * A tar of the secrets and configs to write into a container at `/`, each with its owner and
 * mode. Only file entries: the engine creates missing parent folders (0755) and leaves existing
 * ones as they are.
 */
export function injectedArchive(files: readonly InjectedFile[]): Readable {
  const archive = pack();
  for (const f of files) archive.entry({ name: f.target.replace(/^\/+/, ''), mode: f.mode, uid: f.uid, gid: f.gid, mtime: new Date(0), type: 'file' }, f.content);
  archive.finalize();
  // streamx is not a Node Readable: wrapped, in byte mode
  return Readable.from(archive, { objectMode: false });
}
