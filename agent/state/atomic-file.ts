import { open, rename, readFile, unlink, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentError } from '../core/errors.js';

/** A failed read or write of the state directory (disk full, permissions): transient, the pass is retried. */
function ioError(what: string, path: string, err: unknown): AgentError {
  return new AgentError('STATE_IO', `cannot ${what} ${path}: ${(err as Error).message}`, { cause: err, data: { path, errno: (err as NodeJS.ErrnoException).code } });
}

/**
 * Writes a file so that a crash at any instant leaves either the old or the new content, never
 * a mix: write a temporary file, fsync it, rename it over the target, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  try {
    await writeAtomically(path, data, mode);
  } catch (err) {
    throw ioError('write', path, err);
  }
}

async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Removes a file durably; a missing file is fine. */
export async function removeFileDurably(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('remove', path, err);
  }
  await syncDir(dirname(path)).catch((err: unknown) => {
    throw ioError('sync the directory of', path, err);
  });
}

export async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError('read', path, err);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new AgentError('STATE_CORRUPT', `${path} is not valid JSON: ${(err as Error).message}`, { cause: err, data: { path } });
  }
}
