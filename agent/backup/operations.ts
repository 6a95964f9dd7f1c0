import { posix } from 'node:path';
import { isoTime } from '../core/clock.js';
import { AgentError } from '../core/errors.js';
import { serviceContainer } from '../observe/observe.js';
import type { DesiredState } from '../model/desired.js';
import type { ContainerInfo } from '../model/actual.js';
import type { GateVerdict } from '../model/health.js';
import type { HealthOptions } from '../model/desired.js';
import type { ContainerId } from '../core/ids.js';
import type { ServiceLocks } from '../ports/state.js';
import type { JournalReader } from '../ports/state.js';
import { archiveTargets, dumpDatabase, manifestFor, refOf, removeIncomplete, writeManifest, type BackupDeps, type BackupSubject } from './engine.js';
import { newBackupId } from './manifest.js';
import { type Artifact, type BackupManifest, type BackupReason } from '../model/backup.js';
import { restoreDatabase, restoreFiles, verifyBeforeRestore } from './restore.js';
import { applyRetention } from './retention.js';
import { mountedVolumes } from './tx-backup.js';

export interface OperationDeps {
  backup: BackupDeps;
  locks: ServiceLocks;
  journals: JournalReader;
  gate: (id: ContainerId, options: HealthOptions) => Promise<GateVerdict>;
  /** How long to wait for a service busy with another operation. */
  lockTimeoutMs: number;
}

const STOP_TIMEOUT_MS = 30_000;

/**
 * A backup of one service outside an update (scheduled, or `agent backup create`): the dump
 * from the running database; volumes and paths from the stopped container (consistency `stop`,
 * the default; it is started again and must pass its health gate) or live.
 */
export async function backupService(deps: OperationDeps, desired: DesiredState, service: string, reason: BackupReason, signal?: AbortSignal, keep: readonly string[] = []): Promise<BackupManifest> {
  const d = desired.services[service];
  const spec = d?.agent.backup;
  if (!d || !spec) throw new AgentError('USAGE', `service ${service} has no x-agent.backup block in the desired state`);
  const ctx: BackupDeps = { ...deps.backup, stack: desired.stack };
  return withServiceLock(deps, service, `${reason} backup`, async () => {
    const c = await mustFind(ctx, desired.stack, service);
    await ctx.repo.check(signal);
    const protectedIds = new Set([...(await inFlight(deps)), ...keep]);
    await removeIncomplete(ctx, service, protectedIds);
    // Before the backup, as in an update (the backup about to be made is one of the `keep`).
    await applyRetention(ctx.repo, { host: ctx.host, stack: desired.stack, service }, desired.backups, ctx.clock.now(), protectedIds, ctx.log);
    const id = newBackupId(ctx.clock.now());
    const startedAt = isoTime(ctx.clock);
    const subject: BackupSubject = { service, spec, containerId: c.id, image: c.image, specHash: d.hash, revision: desired.revision, volumeNames: { ...volumeNames(desired, service), ...mountedVolumes(spec, c.mounts) } };
    if (spec.postgres) subject.dbContainerId = (await mustFind(ctx, desired.stack, spec.postgres.service, true)).id;
    const ref = refOf(ctx, subject, id, reason);
    const artifacts = spec.postgres ? [await dumpDatabase(ctx, subject, ref, signal)] : [];
    let consistency: BackupManifest['consistency'] = 'none';
    if (spec.targets.length > 0) {
      const stop = spec.consistency === 'stop' && c.status === 'running';
      consistency = stop ? 'stopped' : c.status === 'running' ? 'live' : 'stopped';
      if (stop) await ctx.docker.stopContainer(c.id, d.spec.stopGracePeriodMs ?? STOP_TIMEOUT_MS);
      try {
        artifacts.push(...(await archiveTargets(ctx, subject, ref, signal)));
      } finally {
        if (stop) await startAndCheck(deps, c.id, d.agent.health, service);
      }
    }
    const m = manifestFor(ctx, subject, id, reason, startedAt, artifacts, consistency);
    await writeManifest(ctx, m);
    return m;
  });
}

export interface RestoreOptions {
  /** Take a backup of the current data first, so that the restore itself can be undone (default true). */
  safetyBackup: boolean;
}

/**
 * `agent restore <id>`: checks every artifact first, backs up the current data, stops the
 * service, puts its volumes and paths back, starts it, restores the database dump when it is
 * not covered by a restored volume, and runs the health gate.
 */
export async function restoreService(deps: OperationDeps, desired: DesiredState, m: BackupManifest, opts: RestoreOptions): Promise<{ safety?: BackupManifest; verdict: GateVerdict }> {
  const d = desired.services[m.service];
  if (!d) throw new AgentError('USAGE', `service ${m.service} is not in the desired state of stack ${desired.stack}`);
  const ctx: BackupDeps = { ...deps.backup, stack: m.stack };
  m = withDesiredParameters(m, desired);
  await verifyBeforeRestore(ctx, m, m.artifacts);
  // The backup being restored is never the one the safety backup's retention deletes.
  const safety = opts.safetyBackup && d.agent.backup ? await backupService(deps, desired, m.service, 'pre-restore', undefined, [m.id]) : undefined;
  return withServiceLock(deps, m.service, `restore of backup ${m.id}`, async () => {
    const c = await mustFind(ctx, desired.stack, m.service);
    const files = m.artifacts.some((a) => a.kind === 'volume' || a.kind === 'path');
    if (files) {
      await ctx.docker.stopContainer(c.id, d.spec.stopGracePeriodMs ?? STOP_TIMEOUT_MS);
      try {
        await restoreFiles(ctx, m, { id: c.id, image: c.image });
      } catch (err) {
        // Failed before a volume was emptied: the data is as it was, serve it again. After: the
        // service stays stopped rather than run on a half-restored volume.
        if ((err as AgentError).data?.emptied !== true) await ctx.docker.startContainer(c.id);
        else ctx.log.error({ service: m.service, backup: m.id }, 'The restore failed after a volume was emptied: the service is left stopped');
        throw err;
      }
      await ctx.docker.startContainer(c.id);
    }
    const dump = m.artifacts.find((a) => a.kind === 'postgres-dump');
    const coveredByVolume = dump?.dbService === m.service && m.artifacts.some((a) => a.kind === 'volume');
    if (dump && !coveredByVolume) {
      const db = await mustFind(ctx, desired.stack, dump.dbService ?? m.service, true);
      await restoreDatabase(ctx, m, db.id);
    }
    const verdict = await deps.gate(c.id, d.agent.health);
    return safety ? { safety, verdict } : { verdict };
  });
}

/**
 * What a restore writes where, from the desired state, not from the manifest (which a store
 * shared with others could hold): each volume by the engine name the desired state gives its
 * key, each path and the database only where the service's x-agent.backup still names them,
 * and pg_restore as the role that block names. Anything else in the backup is refused.
 */
export function withDesiredParameters(m: BackupManifest, desired: DesiredState): BackupManifest {
  const d = desired.services[m.service];
  const spec = d?.agent.backup;
  const refuse = (what: string) => {
    throw new AgentError('BACKUP_FAILED', `backup ${m.id} holds ${what}, which x-agent.backup of ${m.service} does not name in the desired state: not restored (restore it by hand if it is what you want)`, { data: { backup: m.id } });
  };
  const artifacts = m.artifacts.map((a): Artifact => {
    if (a.kind === 'postgres-dump') {
      const pg = spec?.postgres;
      if (!pg) return refuse(`a PostgreSQL dump of ${a.database ?? '?'}`);
      return { ...a, database: pg.database, user: pg.user, dbService: pg.service };
    }
    const t = spec?.targets.find((x) => (a.kind === 'volume' ? x.kind === 'volume' && x.name === a.volume : x.kind === 'path' && x.target === a.target));
    if (!t) return refuse(a.kind === 'volume' ? `the volume ${a.volume ?? '?'}` : `the path ${a.target ?? '?'}`);
    // The archive's top directory is the basename of where it was read from.
    if (a.target && posix.basename(a.target) !== posix.basename(t.target)) return refuse(`${a.target}, archived under another name than ${t.target}`);
    if (a.kind === 'path') return { ...a, target: t.target };
    const engineName = desired.volumes[t.name]?.name;
    if (!engineName) return refuse(`the volume ${t.name}`);
    return { ...a, target: t.target, volumeName: engineName };
  });
  return { ...m, artifacts };
}

/** Runs `fn` holding the service's lock, waiting up to `lockTimeoutMs` for another operation to end. */
export async function withServiceLock<T>(deps: OperationDeps, service: string, purpose: string, fn: () => Promise<T>): Promise<T> {
  const lock = await deps.locks.acquire(service, purpose, deps.lockTimeoutMs, (ms) => deps.backup.clock.sleep(ms));
  if (!lock.acquired) throw new AgentError('STATE_LOCKED', `service ${service} is busy: ${lock.holder.purpose} (pid ${lock.holder.pid}) since ${lock.holder.since}`);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function mustFind(ctx: BackupDeps, stack: string, service: string, running = false): Promise<ContainerInfo> {
  const c = await serviceContainer(ctx.docker, stack, service);
  if (!c) throw new AgentError('BACKUP_FAILED', `service ${service} has no container (none with the agent's labels for ${stack}/${service})`);
  if (running && c.status !== 'running') throw new AgentError('BACKUP_FAILED', `service ${service} is not running (${c.status})`);
  return c;
}

async function startAndCheck(deps: OperationDeps, id: ContainerId, health: HealthOptions, service: string): Promise<void> {
  await deps.backup.docker.startContainer(id);
  const verdict = await deps.gate(id, { ...health, stabilizationMs: Math.min(health.stabilizationMs, 5000) });
  if (!verdict.ok) throw new AgentError('BACKUP_FAILED', `service ${service} did not come back healthy after its backup: ${verdict.reason}`);
}

async function inFlight(deps: OperationDeps): Promise<Set<string>> {
  return new Set((await deps.journals.list()).flatMap((j) => (j.backup ? [j.backup.id] : [])));
}

function volumeNames(desired: DesiredState, service: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(desired.volumes)) if (desired.services[service]?.spec.volumes.some((m) => m.source === v.name)) out[key] = v.name;
  return out;
}

