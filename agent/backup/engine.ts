import { posix } from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Logger } from 'pino';
import { isoTime, type Clock } from '../core/clock.js';
import { AgentError, errorMessage } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import type { BackupSpec } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';
import { MANIFEST_FILE, backupKey, servicePrefix } from './manifest.js';
import { type Artifact, type BackupManifest, type BackupReason } from '../model/backup.js';
import type { BackupStore } from '../ports/backup-store.js';
import { createDockerDemux } from './streams/demux.js';
import { createHashingStream } from './streams/hash.js';

/** Reports bytes as they are stored: drives the progress line on a terminal. */
export type ProgressListener = (p: { service: string; file: string; bytes: number }) => void;

export interface BackupDeps {
  docker: DockerPort;
  store: BackupStore;
  clock: Clock;
  log: Logger;
  host: string;
  stack: string;
  onProgress?: ProgressListener;
  /** Crash tests stop here: `backup:before-manifest`. */
  failpoint?: (name: string) => void;
  /** Told about every complete backup (metrics). */
  onBackupComplete?: (m: BackupManifest) => void;
}

/** The service being backed up, as it runs now. */
export interface BackupSubject {
  service: string;
  spec: BackupSpec;
  containerId: ContainerId;
  image: string;
  specHash?: string;
  revision?: string;
  /** Volume key -> engine volume name, for restores. */
  volumeNames: Record<string, string>;
  /** The running container of the PostgreSQL service, when `spec.postgres` is set. */
  dbContainerId?: ContainerId;
}

/**
 * `pg_dump -Fc` through a Docker exec, streamed: demultiplexed with backpressure, hashed and
 * stored without ever holding the dump in memory. The dump is taken from the running database,
 * so it is consistent by PostgreSQL's own snapshot.
 */
export async function dumpDatabase(ctx: BackupDeps, s: BackupSubject, id: string, signal?: AbortSignal): Promise<Artifact> {
  const pg = s.spec.postgres;
  if (!pg || !s.dbContainerId) throw new AgentError('INTERNAL', `no database to dump for ${s.service}`);
  const file = 'postgres.dump';
  const argv = ['pg_dump', '-Fc', '-U', pg.user, '-d', pg.database];
  const { output, exitCode } = await ctx.docker.execStream(s.dbContainerId, argv);
  const demux = createDockerDemux({});
  const hash = createHashingStream();
  const body = new PassThrough();
  const stored = ctx.store.put(backupKey(ctx.host, ctx.stack, s.service, id, file), body, signal);
  try {
    await Promise.all([pipeline(output, demux.stdout, hash, progress(ctx, s.service, file), body, { signal }), stored]);
  } catch (err) {
    output.destroy();
    const cause = await storeError(stored, err);
    throw new AgentError('BACKUP_FAILED', `pg_dump of ${pg.database} failed: ${describeIo(cause)}${demux.stderrText() ? `: ${demux.stderrText()}` : ''}`, { cause });
  }
  const code = await exitCode();
  if (code !== 0) throw new AgentError('BACKUP_FAILED', `pg_dump of ${pg.database} exited with code ${code}: ${demux.stderrText().trim() || 'no output'}`, { data: { exitCode: code } });
  return { file, kind: 'postgres-dump', bytes: hash.bytes(), sha256: hash.digest(), compression: 'none', database: pg.database, user: pg.user, dbService: pg.service };
}

/** Every volume and path of the service as gzip-compressed tar, read through the Docker API. */
export async function archiveTargets(ctx: BackupDeps, s: BackupSubject, id: string, signal?: AbortSignal): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  for (const [i, t] of s.spec.targets.entries()) {
    const file = t.kind === 'volume' ? `volume-${t.name}.tar.gz` : `path-${i}-${posix.basename(t.target) || 'root'}.tar.gz`;
    const archive = await ctx.docker.getArchive(s.containerId, t.target);
    const hash = createHashingStream();
    const body = new PassThrough();
    const stored = ctx.store.put(backupKey(ctx.host, ctx.stack, s.service, id, file), body, signal);
    try {
      await Promise.all([pipeline(archive, createGzip({ level: 3 }), hash, progress(ctx, s.service, file), body, { signal }), stored]);
    } catch (err) {
      archive.destroy();
      const cause = await storeError(stored, err);
      throw new AgentError('BACKUP_FAILED', `archive of ${t.target} failed: ${describeIo(cause)}`, { cause, data: { target: t.target } });
    }
    const a: Artifact = { file, kind: t.kind, bytes: hash.bytes(), sha256: hash.digest(), compression: 'gzip', target: t.target };
    if (t.kind === 'volume') {
      a.volume = t.name;
      const engineName = s.volumeNames[t.name];
      if (engineName) a.volumeName = engineName;
    }
    artifacts.push(a);
  }
  return artifacts;
}

/** The manifest, written last: from then on the backup exists. */
export async function writeManifest(ctx: BackupDeps, m: BackupManifest): Promise<void> {
  ctx.failpoint?.('backup:before-manifest');
  await ctx.store.putSmall(backupKey(ctx.host, ctx.stack, m.service, m.id, MANIFEST_FILE), `${JSON.stringify(m, null, 2)}\n`);
  ctx.log.info({ service: m.service, backup: m.id, reason: m.reason, artifacts: m.artifacts.length, bytes: m.artifacts.reduce((n, a) => n + a.bytes, 0) }, 'Backup complete');
  ctx.onBackupComplete?.(m);
}

export function manifestFor(ctx: BackupDeps, s: BackupSubject, id: string, reason: BackupReason, startedAt: string, artifacts: Artifact[], consistency: BackupManifest['consistency'], txId?: string): BackupManifest {
  const m: BackupManifest = { version: 1, id, host: ctx.host, stack: ctx.stack, service: s.service, reason, createdAt: startedAt, finishedAt: isoTime(ctx.clock), image: s.image, consistency, store: ctx.store.location, artifacts };
  if (s.specHash) m.specHash = s.specHash;
  if (s.revision) m.revision = s.revision;
  if (txId) m.txId = txId;
  return m;
}

/** Deletes the leftovers of backups that never got their manifest (an interrupted backup), except `keep`. */
export async function removeIncomplete(ctx: BackupDeps, service: string, keep: ReadonlySet<string>): Promise<string[]> {
  const prefix = servicePrefix(ctx.host, ctx.stack, service);
  const objects = await ctx.store.list(prefix);
  const byId = new Map<string, string[]>();
  for (const o of objects) {
    const id = o.key.slice(prefix.length).split('/')[0] as string;
    byId.set(id, [...(byId.get(id) ?? []), o.key]);
  }
  const removed: string[] = [];
  for (const [id, keys] of byId) {
    if (keep.has(id) || keys.some((k) => k.endsWith(`/${MANIFEST_FILE}`))) continue;
    await ctx.store.delete(keys);
    removed.push(id);
  }
  if (removed.length > 0) ctx.log.warn({ service, backups: removed }, 'Removed incomplete backups');
  return removed;
}

function progress(ctx: BackupDeps, service: string, file: string): Transform {
  let bytes = 0;
  let last = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (ctx.onProgress && bytes - last >= 4 * 1024 * 1024) {
        last = bytes;
        ctx.onProgress({ service, file, bytes });
      }
      cb(null, chunk);
    },
    flush(cb) {
      ctx.onProgress?.({ service, file, bytes });
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

function describeIo(err: unknown): string {
  const message = errorMessage(err);
  return (err as NodeJS.ErrnoException)?.code === 'ENOSPC' && !message.includes('disk full') ? `${message} (disk full)` : message;
}
