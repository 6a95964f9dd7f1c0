import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AgentError, errorMessage } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import type { BackupDeps } from './engine.js';
import { type Artifact, type BackupManifest } from '../model/backup.js';
import { createDockerDemux } from '../docker/demux.js';

const DB_READY_TIMEOUT_MS = 120_000;

/** Checks every artifact (archives: size, sha256, tar entries; restic: snapshots and repository) before anything is overwritten. */
export async function verifyBeforeRestore(ctx: BackupDeps, m: BackupManifest, artifacts: readonly Artifact[]): Promise<void> {
  for (const check of await ctx.repo.verify({ ...m, artifacts: [...artifacts] })) {
    if (!check.ok) throw new AgentError('BACKUP_FAILED', `backup ${m.id} cannot be restored: ${check.file}: ${check.problem}`, { data: { backup: m.id, file: check.file } });
  }
}

/**
 * Volumes and paths back into a STOPPED container. A volume is emptied first, so that files
 * written after the backup do not survive the restore; a path is extracted over what is there.
 */
export async function restoreFiles(ctx: BackupDeps, m: BackupManifest, container: { id: ContainerId; image: string }): Promise<void> {
  const files = m.artifacts.filter((a) => a.kind === 'volume' || a.kind === 'path');
  await verifyBeforeRestore(ctx, m, files);
  for (const a of files) {
    await ctx.repo.restoreFiles(m, a, { container: container.id, image: container.image, ...(a.kind === 'volume' && a.volumeName ? { volumeName: a.volumeName } : {}) });
    ctx.log.info({ service: m.service, backup: m.id, target: a.target }, 'Restored from backup');
  }
}

/**
 * The database dump back into the running PostgreSQL container: `pg_restore --clean
 * --if-exists` in one transaction, with the dump streamed to its standard input.
 */
export async function restoreDatabase(ctx: BackupDeps, m: BackupManifest, dbContainer: ContainerId): Promise<void> {
  const dump = m.artifacts.find((a) => a.kind === 'postgres-dump');
  if (!dump) return;
  await verifyBeforeRestore(ctx, m, [dump]);
  const user = dump.user ?? 'postgres';
  await waitForDatabase(ctx, dbContainer, user);
  const { body, done } = await ctx.repo.open(m, dump);
  let exec: Awaited<ReturnType<BackupDeps['docker']['execStream']>>;
  try {
    exec = await ctx.docker.execStream(dbContainer, ['pg_restore', '--clean', '--if-exists', '--no-owner', '--single-transaction', '-U', user, '-d', dump.database ?? 'postgres'], { stdin: body });
  } catch (err) {
    body.destroy();
    await done().catch(() => undefined);
    throw err;
  }
  const { output, exitCode } = exec;
  const demux = createDockerDemux({});
  let failure: unknown;
  try {
    await pipeline(output, demux.stdout, new Writable({ write: (_c, _e, cb) => cb() }));
  } catch (err) {
    failure = err;
  } finally {
    // pg_restore may stop reading early (bad input): without this the engine keeps the
    // connection open and our writes hang until they time out.
    output.destroy();
    body.destroy();
  }
  // A read that failed half-way ends the stream early: pg_restore's transaction then rolls back.
  const read = await done().then(
    () => undefined,
    (err: unknown) => err,
  );
  if (failure) throw new AgentError('BACKUP_FAILED', `pg_restore failed: ${errorMessage(failure)}`, { cause: failure });
  const code = await exitCode();
  if (code !== 0) throw new AgentError('BACKUP_FAILED', `pg_restore of ${dump.database} exited with code ${code}: ${demux.stderrText().trim().slice(-1000)}${read ? `; reading the dump failed: ${errorMessage(read)}` : ''}`, { data: { exitCode: code } });
  if (read) throw new AgentError('BACKUP_FAILED', `reading the dump of ${dump.database} failed: ${errorMessage(read)}`, { cause: read });
  ctx.log.info({ service: m.service, backup: m.id, database: dump.database }, 'Database restored from backup');
}

async function waitForDatabase(ctx: BackupDeps, id: ContainerId, user: string): Promise<void> {
  const deadline = ctx.clock.now() + DB_READY_TIMEOUT_MS;
  let last = '';
  while (ctx.clock.now() < deadline) {
    const r = await ctx.docker.exec(id, ['pg_isready', '-U', user], { timeoutMs: 5000 }).catch((err: unknown) => ({ exitCode: -1, output: errorMessage(err) }));
    if (r.exitCode === 0) return;
    last = r.output;
    await ctx.clock.sleep(500);
  }
  throw new AgentError('BACKUP_FAILED', `PostgreSQL did not accept connections within ${DB_READY_TIMEOUT_MS / 1000}s: ${last}`);
}
