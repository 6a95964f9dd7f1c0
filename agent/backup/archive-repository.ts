import { createHmac, timingSafeEqual } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { Logger } from 'pino';
import { canonicalJson } from '../core/canonical.js';
import { AgentError, errorMessage } from '../core/errors.js';
import type { Artifact, BackupManifest } from '../model/backup.js';
import type { BackupStore } from '../ports/backup-store.js';
import type { ArtifactCheck, BackupRef, BackupRepository, ProgressListener } from '../ports/backup-repository.js';
import type { DockerPort } from '../ports/docker.js';
import { MANIFEST_FILE, backupKey, servicePrefix } from './manifest.js';
import { clearVolume } from './clear-volume.js';
import { describeIo } from './engine.js';
import { createHashingStream } from './streams/hash.js';
import { checkTarEntries } from './streams/tar-safety.js';

/**
 * Plain archives in an object store (a local folder or S3): each artifact a file (a dump, or a
 * gzip-compressed tar read through the Docker API), hashed as it is stored, and a JSON
 * manifest written last. Any tool reads them; nothing is deduplicated.
 */
export function createArchiveRepository(store: BackupStore, docker: DockerPort, log: Logger, manifestKey?: Buffer): BackupRepository {
  const macOf = (m: BackupManifest): string | undefined => {
    if (!manifestKey) return undefined;
    const { mac: _mac, ...rest } = m;
    return createHmac('sha256', manifestKey).update(canonicalJson(rest)).digest('hex');
  };
  const put = async (b: BackupRef, file: string, source: Readable, gzip: boolean, signal: AbortSignal | undefined, onProgress: ProgressListener | undefined) => {
    const hash = createHashingStream();
    const body = new PassThrough();
    const stored = store.put(backupKey(b.host, b.stack, b.service, b.id, file), body, signal);
    const stages = [...(gzip ? [createGzip({ level: 3 })] : []), hash, progress(b.service, file, onProgress), body];
    try {
      await Promise.all([pipeline([source, ...stages], { signal }), stored]);
    } catch (err) {
      source.destroy();
      throw await storeError(stored, err);
    }
    return { bytes: hash.bytes(), sha256: hash.digest(), compression: gzip ? ('gzip' as const) : ('none' as const) };
  };

  const verifyArtifact = async (m: BackupManifest, a: Artifact): Promise<ArtifactCheck> => {
    const hash = createHashingStream();
    try {
      const body = await store.get(backupKey(m.host, m.stack, m.service, m.id, a.file));
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
  };

  const list = async (prefix = ''): Promise<BackupManifest[]> => {
    const keys = (await store.list(prefix)).filter((o) => o.key.endsWith(`/${MANIFEST_FILE}`));
    const out: BackupManifest[] = [];
    for (const { key } of keys) {
      const text = await store.getSmall(key);
      if (!text) continue;
      try {
        out.push(JSON.parse(text) as BackupManifest);
      } catch {
        // An unreadable manifest is not a backup one could restore.
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  };

  return {
    format: 'archive',
    authenticate(m) {
      const expected = macOf(m);
      if (!expected || !m.mac) return 'unauthenticated';
      const a = Buffer.from(m.mac, 'hex');
      const b = Buffer.from(expected, 'hex');
      return a.length === b.length && timingSafeEqual(a, b) ? 'ok' : 'altered';
    },
    location: store.location,
    deduplicates: false,
    check: (signal) => store.check(signal),
    saveStream: (b, file, body, signal, onProgress) => put(b, file, body, false, signal, onProgress),
    async saveFiles(b, file, from, signal, onProgress) {
      if (!('container' in from)) throw new AgentError('INTERNAL', `archive backups read volumes through a container, not ${from.volumeName}`);
      let archive: Readable;
      try {
        archive = await docker.getArchive(from.container, from.path);
        return await put(b, file, archive, true, signal, onProgress);
      } catch (err) {
        throw new AgentError('BACKUP_FAILED', `archive of ${from.path} failed: ${describeIo(err)}`, { cause: err, data: { target: from.path } });
      }
    },
    async discard(b, a) {
      await store.delete([backupKey(b.host, b.stack, b.service, b.id, a.file)]);
    },
    async commit(m) {
      const mac = macOf(m);
      await store.putSmall(backupKey(m.host, m.stack, m.service, m.id, MANIFEST_FILE), `${JSON.stringify(mac ? { ...m, mac } : m, null, 2)}\n`);
    },
    list,
    async verify(m) {
      const checks: ArtifactCheck[] = [];
      for (const a of m.artifacts) checks.push(await verifyArtifact(m, a));
      return checks;
    },
    async remove(ms) {
      for (const m of ms) {
        const keys = (await store.list(`${servicePrefix(m.host, m.stack, m.service)}${m.id}/`)).map((o) => o.key);
        await store.delete(keys.filter((k) => k.endsWith(`/${MANIFEST_FILE}`)));
        await store.delete(keys.filter((k) => !k.endsWith(`/${MANIFEST_FILE}`)));
      }
    },
    async removeIncomplete(scope, keep) {
      const prefix = servicePrefix(scope.host, scope.stack, scope.service);
      const byId = new Map<string, string[]>();
      for (const o of await store.list(prefix)) {
        const id = o.key.slice(prefix.length).split('/')[0] as string;
        byId.set(id, [...(byId.get(id) ?? []), o.key]);
      }
      const removed: string[] = [];
      for (const [id, keys] of byId) {
        if (keep.has(id) || keys.some((k) => k.endsWith(`/${MANIFEST_FILE}`))) continue;
        await store.delete(keys);
        removed.push(id);
      }
      return removed;
    },
    async restoreFiles(m, a, into) {
      const target = a.target as string;
      if (a.kind === 'volume' && into.volumeName) await clearVolume(docker, { image: into.image, volumeName: into.volumeName, target, stack: m.stack });
      // Verified as it streams into the container (the copy checked before could have been
      // swapped since): its size and sha256 against the manifest, its tar entries checked. A
      // mismatch fails the restore, and the service is not started on what was extracted.
      const body = await store.get(backupKey(m.host, m.stack, m.service, m.id, a.file));
      const hash = createHashingStream();
      const forChecks = new PassThrough();
      const tar = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          forChecks.write(chunk);
          cb(null, chunk);
        },
        flush(cb) {
          forChecks.end();
          cb();
        },
      });
      const checked = checkTarEntries(forChecks, { root: posix.basename(target) }).catch((err: unknown) => {
        tar.destroy(err as Error);
        throw err;
      });
      const streamed = pipeline(body, hash, createGunzip(), tar);
      try {
        await Promise.all([docker.putArchive(into.container, posix.dirname(target), tar), streamed, checked]);
        if (hash.bytes() !== a.bytes || hash.digest() !== a.sha256) throw new AgentError('BACKUP_FAILED', `${a.file} changed since it was verified: ${hash.bytes()} B, sha256 ${hash.digest()}; the manifest says ${a.bytes} B, ${a.sha256}`);
      } catch (err) {
        body.destroy();
        forChecks.destroy();
        throw new AgentError('BACKUP_FAILED', `restore of ${target} from ${a.file} failed: ${errorMessage(err)}`, { cause: err, data: { target, emptied: a.kind === 'volume' } });
      }
      log.debug({ service: m.service, backup: m.id, target }, 'Archive extracted');
    },
    async open(m, a) {
      return { body: await store.get(backupKey(m.host, m.stack, m.service, m.id, a.file)), done: async () => undefined };
    },
    async drillFiles(m, a) {
      const check = await verifyArtifact(m, a);
      if (!check.ok) return { files: 0, bytes: 0, problem: check.problem ?? 'unreadable' };
      const body = await store.get(backupKey(m.host, m.stack, m.service, m.id, a.file));
      const gunzip = createGunzip();
      body.once('error', (err) => gunzip.destroy(err));
      const counted = await checkTarEntries(body.pipe(gunzip), { root: posix.basename(a.target ?? '/') || 'root' });
      return { files: counted.entries, bytes: counted.bytes };
    },
    maintain: async () => undefined,
  };
}

function progress(service: string, file: string, onProgress: ProgressListener | undefined): Transform {
  let bytes = 0;
  let last = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (onProgress && bytes - last >= 4 * 1024 * 1024) {
        last = bytes;
        onProgress({ service, file, bytes });
      }
      cb(null, chunk);
    },
    flush(cb) {
      onProgress?.({ service, file, bytes });
      cb();
    },
  });
}

/** The store's own error says more (disk full, bucket unreachable) than the broken pipe it causes upstream. */
async function storeError(stored: Promise<unknown>, fallback: unknown): Promise<unknown> {
  return stored.then(
    () => fallback,
    (err: unknown) => err,
  );
}
