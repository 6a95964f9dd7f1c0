import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import { AgentError, errorMessage } from '../core/errors.js';
import { MANIFEST_FILE, backupKey } from './manifest.js';
import { type Artifact, type BackupManifest } from '../model/backup.js';
import type { BackupStore } from '../ports/backup-store.js';
import { createHashingStream } from './streams/hash.js';
import { checkTarEntries } from './streams/tar-safety.js';

/** Complete backups (those with a manifest) under a prefix, newest first. */
export async function listBackups(store: BackupStore, prefix = ''): Promise<BackupManifest[]> {
  const keys = (await store.list(prefix)).filter((o) => o.key.endsWith(`/${MANIFEST_FILE}`));
  const out: BackupManifest[] = [];
  for (const { key } of keys) {
    const text = await store.getSmall(key);
    if (!text) continue;
    try {
      out.push(JSON.parse(text) as BackupManifest);
    } catch {
      // An unreadable manifest is not a backup one could restore; `verify` reports it by id.
    }
  }
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

/** The backup with this id, on any host/stack/service of the store. */
export async function findBackup(store: BackupStore, id: string, prefix = ''): Promise<BackupManifest> {
  const found = (await listBackups(store, prefix)).filter((m) => m.id === id);
  if (found.length === 0) throw new AgentError('USAGE', `no complete backup with id ${id} in ${store.location}`);
  if (found.length > 1) throw new AgentError('USAGE', `backup id ${id} is ambiguous (${found.map((m) => `${m.host}/${m.stack}/${m.service}`).join(', ')})`);
  return found[0] as BackupManifest;
}

export interface ArtifactCheck {
  file: string;
  ok: boolean;
  bytes: number;
  problem?: string;
}

/**
 * Re-reads every artifact of a backup from the store and checks its size and sha256, and that
 * every tar archive only holds entries under its own top directory (no absolute paths, no
 * `..`, no links leaving it). Nothing is written anywhere.
 */
export async function verifyBackup(store: BackupStore, m: BackupManifest): Promise<ArtifactCheck[]> {
  const checks: ArtifactCheck[] = [];
  for (const a of m.artifacts) checks.push(await verifyArtifact(store, m, a));
  return checks;
}

export async function verifyArtifact(store: BackupStore, m: BackupManifest, a: Artifact): Promise<ArtifactCheck> {
  const key = backupKey(m.host, m.stack, m.service, m.id, a.file);
  const hash = createHashingStream();
  try {
    const body = await store.get(key);
    if (a.compression === 'gzip' && a.target) {
      // One read: hash the stored bytes while the tar inside is checked.
      const gunzip = createGunzip();
      const checked = checkTarEntries(gunzip, { root: posix.basename(a.target) });
      await Promise.all([pipeline(body, hash, gunzip), checked]);
    } else {
      await pipeline(body, hash, new Writable({ write: (_c, _e, cb) => cb() }));
    }
  } catch (err) {
    return { file: a.file, ok: false, bytes: hash.bytes(), problem: errorMessage(err) };
  }
  if (hash.bytes() !== a.bytes) return { file: a.file, ok: false, bytes: hash.bytes(), problem: `size ${hash.bytes()} B, the manifest says ${a.bytes} B` };
  if (hash.digest() !== a.sha256) return { file: a.file, ok: false, bytes: hash.bytes(), problem: `sha256 ${hash.digest()}, the manifest says ${a.sha256}` };
  return { file: a.file, ok: true, bytes: hash.bytes() };
}
