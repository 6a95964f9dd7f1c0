import { posix } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { isoTime, type Clock } from '../core/clock.js';
import { AgentError, errorMessage } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import type { BackupSpec } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';
import { type Artifact, type BackupManifest, type BackupReason } from '../model/backup.js';
import type { BackupRef, BackupRepository, ProgressListener } from '../ports/backup-repository.js';
import { createDockerDemux } from '../docker/demux.js';


export interface BackupDeps {
  docker: DockerPort;
  repo: BackupRepository;
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

/** The backup an artifact of this subject belongs to. */
export function refOf(ctx: BackupDeps, s: BackupSubject, id: string, reason: BackupReason): BackupRef {
  return { id, host: ctx.host, stack: ctx.stack, service: s.service, reason, image: s.image, ...(s.revision ? { revision: s.revision } : {}) };
}

/**
 * `pg_dump` through a Docker exec, streamed into the repository with backpressure, never held
 * in memory; consistent by PostgreSQL's own snapshot. Custom format, uncompressed when the
 * repository deduplicates (restic compresses it). pg_dump's own exit code decides: a dump
 * that failed half-way is discarded, whatever the repository made of the truncated stream.
 */
export async function dumpDatabase(ctx: BackupDeps, s: BackupSubject, ref: BackupRef, signal?: AbortSignal): Promise<Artifact> {
  const pg = s.spec.postgres;
  if (!pg || !s.dbContainerId) throw new AgentError('INTERNAL', `no database to dump for ${s.service}`);
  const file = 'postgres.dump';
  const argv = ['pg_dump', '-Fc', ...(ctx.repo.deduplicates ? ['-Z', '0'] : []), '-U', pg.user, '-d', pg.database];
  const { output, exitCode } = await ctx.docker.execStream(s.dbContainerId, argv);
  const demux = createDockerDemux({});
  const body = new PassThrough();
  const stored = ctx.repo.saveStream(ref, file, body, signal, ctx.onProgress);
  let saved: Awaited<typeof stored>;
  try {
    [, saved] = await Promise.all([pipeline(output, demux.stdout, body, { signal }), stored]);
  } catch (err) {
    output.destroy();
    const cause = await stored.then(
      () => err,
      (e: unknown) => e,
    );
    // pg_dump failing makes the repository fail too (restic refuses an empty snapshot): then say
    // pg_dump's own reason. A store that failed (a full disk) breaks pg_dump's pipe instead: say the store's.
    const dumpCode = await Promise.race([exitCode(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
    const own = demux.stderrText().trim();
    if (dumpCode !== undefined && dumpCode > 0 && own !== '' && !/broken pipe|could not write|EPIPE/i.test(own)) throw new AgentError('BACKUP_FAILED', `pg_dump of ${pg.database} exited with code ${dumpCode}: ${demux.stderrText().trim() || 'no output'}`, { cause, data: { exitCode: dumpCode } });
    throw new AgentError('BACKUP_FAILED', `pg_dump of ${pg.database} failed: ${describeIo(cause)}${demux.stderrText() ? `: ${demux.stderrText()}` : ''}`, { cause });
  }
  const code = await exitCode();
  if (code !== 0) {
    await ctx.repo.discard(ref, { file, ...(saved.snapshot ? { snapshot: saved.snapshot } : {}) }).catch((err: unknown) => ctx.log.warn({ service: s.service, err: errorMessage(err) }, 'Could not discard the truncated dump; the next backup removes it'));
    throw new AgentError('BACKUP_FAILED', `pg_dump of ${pg.database} exited with code ${code}: ${demux.stderrText().trim() || 'no output'}`, { data: { exitCode: code } });
  }
  return { file, kind: 'postgres-dump', ...saved, database: pg.database, user: pg.user, dbService: pg.service };
}

/** Every volume and path of the service, read from its (stopped) container. */
export async function archiveTargets(ctx: BackupDeps, s: BackupSubject, ref: BackupRef, signal?: AbortSignal): Promise<Artifact[]> {
  const artifacts: Artifact[] = [];
  for (const [i, t] of s.spec.targets.entries()) {
    const engineName = t.kind === 'volume' ? s.volumeNames[t.name] : undefined;
    const base = t.kind === 'volume' ? `volume-${t.name}` : `path-${i}-${posix.basename(t.target) || 'root'}`;
    const file = ctx.repo.format === 'archive' ? `${base}.tar.gz` : base;
    // restic reads a volume mounted in its own container (and skips unchanged files); archives go through the Docker API
    const from = ctx.repo.format === 'restic' && engineName ? { volumeName: engineName } : { container: s.containerId, path: t.target };
    const saved = await ctx.repo.saveFiles(ref, file, from, signal, ctx.onProgress);
    const a: Artifact = { file, kind: t.kind, ...saved, target: t.target };
    if (t.kind === 'volume') {
      a.volume = t.name;
      if (engineName) a.volumeName = engineName;
    }
    artifacts.push(a);
  }
  return artifacts;
}

/** The manifest, written last: from then on the backup exists. */
export async function writeManifest(ctx: BackupDeps, m: BackupManifest): Promise<void> {
  ctx.failpoint?.('backup:before-manifest');
  await ctx.repo.commit(m);
  const added = m.artifacts.some((a) => a.added !== undefined) ? { added: m.artifacts.reduce((n, a) => n + (a.added ?? 0), 0) } : {};
  ctx.log.info({ service: m.service, backup: m.id, reason: m.reason, format: m.format ?? 'archive', artifacts: m.artifacts.length, bytes: m.artifacts.reduce((n, a) => n + a.bytes, 0), ...added }, 'Backup complete');
  ctx.onBackupComplete?.(m);
}

export function manifestFor(ctx: BackupDeps, s: BackupSubject, id: string, reason: BackupReason, startedAt: string, artifacts: Artifact[], consistency: BackupManifest['consistency'], txId?: string): BackupManifest {
  const m: BackupManifest = { version: 1, id, host: ctx.host, stack: ctx.stack, service: s.service, reason, createdAt: startedAt, finishedAt: isoTime(ctx.clock), image: s.image, consistency, store: ctx.repo.location, format: ctx.repo.format, artifacts };
  if (s.specHash) m.specHash = s.specHash;
  if (s.revision) m.revision = s.revision;
  if (txId) m.txId = txId;
  return m;
}

/** Deletes the leftovers of backups that never got their manifest (an interrupted backup), except `keep`. */
export async function removeIncomplete(ctx: BackupDeps, service: string, keep: ReadonlySet<string>): Promise<string[]> {
  const removed = await ctx.repo.removeIncomplete({ host: ctx.host, stack: ctx.stack, service }, keep);
  if (removed.length > 0) {
    ctx.log.warn({ service, backups: removed }, 'Removed incomplete backups');
    // restic: the data they had written is freed by the next prune
    await ctx.repo.maintain();
  }
  return removed;
}

export function describeIo(err: unknown): string {
  const message = errorMessage(err);
  return (err as NodeJS.ErrnoException)?.code === 'ENOSPC' && !message.includes('disk full') ? `${message} (disk full)` : message;
}
