import { isoTime } from '../core/clock.js';
import type { ContainerInfo } from '../model/actual.js';
import { asContainerId, type ContainerId } from '../core/ids.js';
import { serviceContainer } from '../observe/observe.js';
import type { BackupPolicy, BackupSpec } from '../model/desired.js';
import type { TxBackup } from '../ports/tx-backup.js';
import { isStartFirst, type Journal, type JournalBackup } from '../model/journal.js';
import type { JournalReader } from '../ports/state.js';
import { archiveTargets, dumpDatabase, refOf, removeIncomplete, writeManifest, type BackupDeps, type BackupSubject } from './engine.js';
import { newBackupId } from './manifest.js';
import { type BackupManifest } from '../model/backup.js';
import { restoreDatabase, restoreFiles } from './restore.js';
import { applyRetention } from './retention.js';
import { AgentError } from '../core/errors.js';

/**
 * The backup steps of update transactions, for services with `x-agent.backup`: the database
 * dump and retention before anything changes (never deleting a backup an in-flight transaction
 * depends on), volumes and paths from the stopped old container, the manifest once the new
 * container has started.
 */
export function createTxBackup(ctx: BackupDeps, policy: BackupPolicy, journals: JournalReader): TxBackup {
  const specOf = (j: Journal): BackupSpec | undefined => j.new?.agent.backup;

  const subject = async (j: Journal): Promise<BackupSubject> => {
    const spec = specOf(j) as BackupSpec;
    const old = j.old as NonNullable<Journal['old']>;
    // The volumes the old container mounts: the data being replaced (a new spec may name a new volume at the same path).
    const running = await ctx.docker.inspectContainer(old.containerId);
    const s: BackupSubject = { service: j.service, spec, containerId: asContainerId(old.containerId), image: old.image, specHash: old.hash, revision: j.revision, volumeNames: { ...volumeNames(j), ...mountedVolumes(spec, running?.mounts) } };
    if (spec.postgres) s.dbContainerId = await dbContainer(j, spec.postgres.service);
    return s;
  };

  const dbContainer = async (j: Journal, service: string): Promise<ContainerId> => {
    if (service === j.service && j.old) return asContainerId(j.old.containerId);
    const c = await serviceContainer(ctx.docker, j.stack, service);
    if (!c || c.status !== 'running') throw new AgentError('BACKUP_FAILED', `the PostgreSQL service ${service} is not running`, { data: { service, status: c?.status ?? 'missing' } });
    return c.id;
  };

  const manifestOf = (j: Journal, b: JournalBackup): BackupManifest => ({
    version: 1,
    id: b.id,
    host: ctx.host,
    stack: j.stack,
    service: j.service,
    reason: 'update',
    createdAt: b.startedAt,
    finishedAt: isoTime(ctx.clock),
    image: j.old?.image ?? '',
    ...(j.old?.hash ? { specHash: j.old.hash } : {}),
    revision: j.revision,
    txId: j.txId,
    // A start-first update archives the old container's files while it runs.
    consistency: (specOf(j)?.targets.length ?? 0) === 0 ? 'none' : isStartFirst(j) ? 'live' : 'stopped',
    store: ctx.repo.location,
    format: ctx.repo.format,
    artifacts: b.artifacts,
  });

  return {
    async begin(j, signal) {
      const spec = specOf(j);
      if (!spec || !j.old) return undefined;
      const bctx = { ...ctx, stack: j.stack };
      await ctx.repo.check(signal);
      const inFlight = new Set((await journals.list()).flatMap((x) => (x.backup ? [x.backup.id] : [])));
      await removeIncomplete(bctx, j.service, inFlight);
      // Retention runs here, while the old version still serves, not in the downtime window.
      await applyRetention(ctx.repo, { host: ctx.host, stack: j.stack, service: j.service }, policy, ctx.clock.now(), inFlight, ctx.log);
      const b: JournalBackup = { id: newBackupId(ctx.clock.now()), startedAt: isoTime(ctx.clock), artifacts: [], complete: false, restoreOnRollback: spec.restoreOnRollback };
      if (spec.postgres) {
        const s = await subject(j);
        b.artifacts.push(await dumpDatabase(bctx, s, refOf(bctx, s, b.id, 'update'), signal));
      }
      return b;
    },

    async complete(j, b, signal) {
      const bctx = { ...ctx, stack: j.stack };
      const s = await subject(j);
      const files = await archiveTargets(bctx, s, refOf(bctx, s, b.id, 'update'), signal);
      b.artifacts = [...b.artifacts.filter((a) => a.kind === 'postgres-dump'), ...files];
    },

    async commit(j, b) {
      await writeManifest({ ...ctx, stack: j.stack }, manifestOf(j, b));
    },

    async restoreFiles(j, b) {
      if (!j.old) return;
      await restoreFiles({ ...ctx, stack: j.stack }, manifestOf(j, b), { id: asContainerId(j.old.containerId), image: j.old.image });
    },

    needsDatabaseRestore(j, b) {
      const dump = b.artifacts.find((a) => a.kind === 'postgres-dump');
      if (!dump) return false;
      // A database service whose data volume was restored is already back, byte for byte.
      const ownVolume = dump.dbService === j.service && b.artifacts.some((a) => a.kind === 'volume');
      return !ownVolume;
    },

    async restoreDatabase(j, b) {
      const dump = b.artifacts.find((a) => a.kind === 'postgres-dump');
      if (!dump) return;
      await restoreDatabase({ ...ctx, stack: j.stack }, manifestOf(j, b), await dbContainer(j, dump.dbService ?? j.service));
    },
  };
}

/** Volume key -> engine name, from the spec being replaced (the new one mounts the same volumes). */
function volumeNames(j: Journal): Record<string, string> {
  const out: Record<string, string> = {};
  const spec = j.new?.agent.backup;
  for (const t of spec?.targets ?? []) {
    const mount = j.new?.spec.volumes.find((m) => m.type === 'volume' && m.target === t.target);
    if (t.kind === 'volume' && mount) out[t.name] = mount.source;
  }
  return out;
}


/** Volume key -> engine name, from what a container actually mounts at each target. */
export function mountedVolumes(spec: BackupSpec, mounts: ContainerInfo['mounts'] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of spec.targets) {
    const m = mounts?.find((x) => x.type === 'volume' && x.target === t.target);
    if (t.kind === 'volume' && m?.source) out[t.name] = m.source;
  }
  return out;
}
