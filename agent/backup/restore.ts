import { posix } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { AgentError, errorMessage } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import { LABELS } from '../core/labels.js';
import type { BackupDeps } from './engine.js';
import { verifyArtifact } from './catalog.js';
import { backupKey } from './manifest.js';
import { type Artifact, type BackupManifest } from '../model/backup.js';
import { createDockerDemux } from './streams/demux.js';

const HELPER_TIMEOUT_MS = 10 * 60 * 1000;
const DB_READY_TIMEOUT_MS = 120_000;

/** Checks every artifact (size, sha256, tar entries) before anything is overwritten. */
export async function verifyBeforeRestore(ctx: BackupDeps, m: BackupManifest, artifacts: readonly Artifact[]): Promise<void> {
  for (const a of artifacts) {
    const check = await verifyArtifact(ctx.store, m, a);
    if (!check.ok) throw new AgentError('BACKUP_FAILED', `backup ${m.id} cannot be restored: ${a.file}: ${check.problem}`, { data: { backup: m.id, file: a.file } });
  }
}

/**
 * Volumes and paths back into a STOPPED container. A volume is emptied first (by a throwaway
 * container of the service's own image, with the volume mounted and no network), so that files
 * written after the backup do not survive the restore; a path is extracted over what is there.
 */
export async function restoreFiles(ctx: BackupDeps, m: BackupManifest, container: { id: ContainerId; image: string }): Promise<void> {
  const files = m.artifacts.filter((a) => a.kind === 'volume' || a.kind === 'path');
  await verifyBeforeRestore(ctx, m, files);
  for (const a of files) {
    const target = a.target as string;
    if (a.kind === 'volume' && a.volumeName) {
      // Only sh and rm are needed (busybox has them): hidden files included, the mount point kept.
      const cleared = await ctx.docker.runOnce(container.image, ['/bin/sh', '-c', 'rm -rf -- "$0"/* "$0"/.[!.]* "$0"/..?*', target], [{ type: 'volume', source: a.volumeName, target, readOnly: false }], {
        timeoutMs: HELPER_TIMEOUT_MS,
        user: '0',
        labels: { [LABELS.managed]: 'true', [LABELS.stack]: m.stack, 'io.gitops-agent.role': 'restore-helper' },
      });
      if (cleared.exitCode !== 0) throw new AgentError('BACKUP_FAILED', `cannot empty volume ${a.volumeName} before the restore (the image needs /bin/sh and rm): exit ${cleared.exitCode} ${cleared.output}`, { data: { volume: a.volumeName } });
    }
    const body = await ctx.store.get(backupKey(m.host, m.stack, m.service, m.id, a.file));
    const tar = body.pipe(createGunzip());
    body.once('error', (err) => tar.destroy(err));
    try {
      await ctx.docker.putArchive(container.id, posix.dirname(target), tar);
    } catch (err) {
      throw new AgentError('BACKUP_FAILED', `restore of ${target} from ${a.file} failed: ${errorMessage(err)}`, { cause: err, data: { target } });
    }
    ctx.log.info({ service: m.service, backup: m.id, target }, 'Restored from backup');
  }
}

/**
 * The database dump back into the running PostgreSQL container: `pg_restore --clean
 * --if-exists` with the dump streamed to its standard input.
 */
export async function restoreDatabase(ctx: BackupDeps, m: BackupManifest, dbContainer: ContainerId): Promise<void> {
  const dump = m.artifacts.find((a) => a.kind === 'postgres-dump');
  if (!dump) return;
  await verifyBeforeRestore(ctx, m, [dump]);
  const user = dump.user ?? 'postgres';
  await waitForDatabase(ctx, dbContainer, user);
  const body = await ctx.store.get(backupKey(m.host, m.stack, m.service, m.id, dump.file));
  const { output, exitCode } = await ctx.docker.execStream(dbContainer, ['pg_restore', '--clean', '--if-exists', '--no-owner', '--single-transaction', '-U', user, '-d', dump.database ?? 'postgres'], { stdin: body });
  const demux = createDockerDemux({});
  try {
    await pipeline(output, demux.stdout, new Writable({ write: (_c, _e, cb) => cb() }));
  } catch (err) {
    throw new AgentError('BACKUP_FAILED', `pg_restore failed: ${errorMessage(err)}`, { cause: err });
  } finally {
    // pg_restore may stop reading early (bad input): without this the engine keeps the
    // connection open and our writes hang until they time out.
    output.destroy();
    body.destroy();
  }
  const code = await exitCode();
  if (code !== 0) throw new AgentError('BACKUP_FAILED', `pg_restore of ${dump.database} exited with code ${code}: ${demux.stderrText().trim().slice(-1000)}`, { data: { exitCode: code } });
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
