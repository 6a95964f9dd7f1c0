import { randomBytes } from 'node:crypto';
import { isoTime } from '../core/clock.js';
import { AgentError, toAgentError } from '../core/errors.js';
import { asContainerId, type ContainerId } from '../core/ids.js';
import { LABELS, containerName, previousContainerName } from '../core/labels.js';
import type { AgentOptions, Dependency, ContainerSpec, HealthOptions } from '../model/desired.js';
import type { ContainerInfo } from '../model/actual.js';
import type { TransactionRecord, TxResult } from '../model/records.js';
import { PRE_CHANGE_PHASES, ROLLBACK_PHASES, type Journal, type TxKind, type TxPhase } from '../model/journal.js';
import type { TxDeps } from './types.js';

export interface TransactionRequest {
  stack: string;
  service: string;
  kind: TxKind;
  revision: string;
  /** The live container, when there is one. */
  old?: ContainerInfo;
  /** Health options of the running version, for the check after a rollback. */
  oldAgent?: AgentOptions;
  target?: { hash: string; spec: ContainerSpec; agent: AgentOptions; dependsOn: Dependency[]; externalVolumes: string[] };
}

export interface TransactionOutcome {
  record: TransactionRecord;
  /** The desired spec failed for reasons of its own: do not retry it until the desired state changes. */
  hold: boolean;
  journal: Journal;
}

/** Called with the outcome before the journal is removed, so a crash in between repeats it (it must be idempotent). */
export type RecordOutcome = (outcome: TransactionOutcome) => Promise<void>;

const ROLLBACK_STABILISATION_CAP_MS = 5000;

export function newTxId(now: number): string {
  return `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** Runs one service's update (or create, or removal) as a journaled transaction. */
export async function runTransaction(deps: TxDeps, req: TransactionRequest, record: RecordOutcome, signal?: AbortSignal): Promise<TransactionOutcome> {
  const now = isoTime(deps.clock);
  const j: Journal = {
    version: 1,
    txId: deps.newTxId(),
    stack: req.stack,
    service: req.service,
    kind: req.kind,
    revision: req.revision,
    startedAt: now,
    phase: 'pull',
    trail: [],
  };
  if (req.old) {
    j.old = {
      containerId: req.old.id,
      name: req.old.name,
      image: req.old.image,
      hash: req.old.labels[LABELS.specHash] ?? '',
      restartPolicy: req.old.restartPolicy,
      stopTimeoutMs: 10_000,
    };
    if (req.oldAgent) j.old.agent = req.oldAgent;
  }
  if (req.target) j.new = { hash: req.target.hash, image: req.target.spec.image, spec: req.target.spec, agent: req.target.agent, dependsOn: req.target.dependsOn, externalVolumes: req.target.externalVolumes };
  if (j.new?.spec.stopGracePeriodMs !== undefined && j.old) j.old.stopTimeoutMs = j.new.spec.stopGracePeriodMs;
  await enter(deps, j, 'pull');
  return drive(deps, j, record, signal, false);
}

/**
 * Finishes or undoes a transaction found in the journal at start-up. Before anything changed
 * (pull, backup) it is dropped and the update is simply planned again; an interrupted health
 * gate starts over from starting the container (which may have been stopped with the engine).
 */
export async function resumeTransaction(deps: TxDeps, j: Journal, record: RecordOutcome, signal?: AbortSignal): Promise<TransactionOutcome> {
  deps.log.warn({ service: j.service, tx: j.txId, phase: j.phase }, 'Resuming interrupted transaction');
  if (PRE_CHANGE_PHASES.includes(j.phase)) {
    j.result = 'interrupted';
    return finish(deps, j, record, true);
  }
  if (j.phase === 'health-gate') await enter(deps, j, 'start-new');
  return drive(deps, j, record, signal, true);
}

async function drive(deps: TxDeps, j: Journal, record: RecordOutcome, signal: AbortSignal | undefined, recovered: boolean): Promise<TransactionOutcome> {
  for (;;) {
    const phase = j.phase;
    if (phase === 'finish') return finish(deps, j, record, recovered);
    deps.failpoint(`before:${phase}`);
    let next: TxPhase;
    try {
      next = await runPhase(deps, j, phase, signal);
    } catch (err) {
      const e = toAgentError(err, 'INTERNAL');
      const inRollback = (ROLLBACK_PHASES as readonly string[]).includes(phase);
      if (inRollback && (phase === 'rollback-restore-files' || phase === 'rollback-restore-db') && e.code !== 'DOCKER_UNAVAILABLE') {
        // Data that cannot be put back must not keep the old version down: start it, and say
        // loudly that it runs on the new version's data.
        j.rollbackFailure = `the data could not be restored from backup ${j.backup?.id}: ${e.message}`;
        next = phase === 'rollback-restore-files' ? 'rollback-restore-old' : 'rollback-check-old';
      } else if (inRollback) {
        throw e;
      } else if (phase === 'backup-files') {
        // The old container is only stopped: undo that, nothing else changed.
        j.failure = { code: e.code, message: e.message, phase, at: isoTime(deps.clock) };
        next = 'rollback-restore-old';
      } else if (e.errorClass === 'transient' && !PRE_CHANGE_PHASES.includes(phase)) {
        // Transient trouble (engine restarting, aborted) after something changed: keep the
        // journal and resume later, rather than judging the new version by it.
        throw e;
      } else {
        j.failure = { code: e.code, message: e.message, phase, at: isoTime(deps.clock) };
        next = PRE_CHANGE_PHASES.includes(phase) || j.kind === 'remove' ? 'finish' : 'rollback-remove-new';
      }
    }
    deps.failpoint(`after:${phase}`);
    if (next === 'finish') j.result = resultOf(j);
    await enter(deps, j, next);
  }
}

async function runPhase(deps: TxDeps, j: Journal, phase: Exclude<TxPhase, 'finish'>, signal?: AbortSignal): Promise<TxPhase> {
  const { docker } = deps;
  const canonical = containerName(j.stack, j.service);
  switch (phase) {
    case 'pull': {
      const holder = await docker.inspectContainer(canonical);
      if (holder && holder.id !== j.old?.containerId && holder.labels[LABELS.txId] !== j.txId) {
        throw new AgentError('CONTAINER_CREATE_FAILED', `a container named ${canonical} exists that this agent does not manage for service ${j.service}; rename or remove it`, { data: { name: canonical } });
      }
      if (j.kind === 'remove') return 'stop-old';
      const image = (j.new as NonNullable<Journal['new']>).image;
      if (!(await docker.hasImage(image))) await docker.pullImage(image, { signal });
      return 'backup';
    }
    case 'backup': {
      // Nothing to keep for a first deploy: there is no previous version to return to.
      const backup = j.old ? await deps.backup.begin(j, signal) : undefined;
      if (backup) {
        j.backup = backup;
        await deps.journals.write(j);
      }
      return j.old ? 'stop-old' : 'create-new';
    }
    case 'backup-files':
      if (j.backup && !j.backup.complete) {
        await deps.backup.complete(j, j.backup, signal);
        j.backup.complete = true;
        await deps.journals.write(j);
      }
      return 'rename-old';
    case 'stop-old': {
      const old = j.old as NonNullable<Journal['old']>;
      const c = await docker.inspectContainer(old.containerId);
      if (c) {
        // Disarm the restart policy first: an engine restart must not bring the old copy back
        // beside the new one.
        if (c.restartPolicy !== 'no') await docker.setRestartPolicy(c.id, 'no');
        await docker.stopContainer(c.id, old.stopTimeoutMs);
      }
      return j.kind === 'remove' ? 'remove-old' : 'backup-files';
    }
    case 'rename-old': {
      const old = j.old as NonNullable<Journal['old']>;
      const c = await docker.inspectContainer(old.containerId);
      const kept = previousContainerName(j.stack, j.service, j.txId);
      if (c && c.name !== kept) await docker.renameContainer(c.id, kept);
      return 'create-new';
    }
    case 'create-new': {
      const target = j.new as NonNullable<Journal['new']>;
      for (const m of target.spec.volumes.filter((v) => v.type === 'volume')) {
        if (target.externalVolumes.includes(m.source)) {
          if (!(await docker.volumeExists(m.source))) throw new AgentError('CONTAINER_CREATE_FAILED', `external volume ${m.source} does not exist`, { data: { volume: m.source } });
        } else {
          await docker.ensureVolume(m.source, { [LABELS.managed]: 'true', [LABELS.stack]: j.stack });
        }
      }
      const existing = (await docker.listContainers({ [LABELS.txId]: j.txId })).find((c) => c.id !== j.old?.containerId);
      const id = existing?.id ?? (await docker.createContainer({ name: canonical, spec: target.spec, labels: agentLabels(j) }));
      target.containerId = id;
      await deps.journals.write(j);
      return 'start-new';
    }
    case 'start-new':
      await docker.startContainer(newContainerId(j));
      return 'health-gate';
    case 'health-gate': {
      const target = j.new as NonNullable<Journal['new']>;
      const verdict = await deps.gate(newContainerId(j), target.agent.health, signal);
      // A gate cut short by shutdown says nothing about the version: resume it on restart.
      if (signal?.aborted) throw new AgentError('ABORTED', 'health gate interrupted by shutdown');
      if (verdict.ok) return j.old ? 'remove-old' : 'finish';
      j.failure = { code: 'HEALTH_CHECK_FAILED', message: verdict.reason, phase, at: isoTime(deps.clock) };
      deps.log.warn({ service: j.service, tx: j.txId, reason: verdict.reason }, 'Health gate failed; rolling back');
      return 'rollback-remove-new';
    }
    case 'remove-old':
      await docker.removeContainer(asContainerId((j.old as NonNullable<Journal['old']>).containerId));
      return 'finish';
    case 'rollback-remove-new': {
      const leftovers = await docker.listContainers({ [LABELS.txId]: j.txId });
      for (const c of leftovers.filter((x) => x.id !== j.old?.containerId)) {
        if (j.failure && j.failure.logs === undefined) {
          j.failure.logs = await docker.logs(c.id, 30).catch(() => '');
          await deps.journals.write(j);
        }
        await docker.removeContainer(c.id);
      }
      if (!j.old) return 'finish';
      return restoringData(j) ? 'rollback-restore-files' : 'rollback-restore-old';
    }
    case 'rollback-restore-files':
      if (j.backup) await deps.backup.restoreFiles(j, j.backup);
      return 'rollback-restore-old';
    case 'rollback-restore-db':
      if (j.backup) await deps.backup.restoreDatabase(j, j.backup);
      return 'rollback-check-old';
    case 'rollback-restore-old': {
      const old = j.old as NonNullable<Journal['old']>;
      const c = await docker.inspectContainer(old.containerId);
      if (!c) {
        j.rollbackFailure = `the previous container ${old.name} no longer exists`;
        return 'finish';
      }
      if (c.name !== canonical) await docker.renameContainer(c.id, canonical);
      if (c.restartPolicy !== old.restartPolicy) await docker.setRestartPolicy(c.id, old.restartPolicy);
      await docker.startContainer(c.id);
      return restoringData(j) && j.backup && deps.backup.needsDatabaseRestore(j, j.backup) && !j.rollbackFailure ? 'rollback-restore-db' : 'rollback-check-old';
    }
    case 'rollback-check-old': {
      const old = j.old as NonNullable<Journal['old']>;
      const verdict = await deps.gate(asContainerId(old.containerId), rollbackHealth(old.agent?.health), signal);
      if (!verdict.ok) j.rollbackFailure = verdict.reason;
      return 'finish';
    }
  }
}

async function enter(deps: TxDeps, j: Journal, phase: TxPhase): Promise<void> {
  j.phase = phase;
  j.trail.push({ phase, at: isoTime(deps.clock) });
  await deps.journals.write(j);
}

async function finish(deps: TxDeps, j: Journal, record: RecordOutcome, recovered: boolean): Promise<TransactionOutcome> {
  const result = j.result ?? resultOf(j);
  const outcome: TransactionOutcome = { record: toRecord(deps, j, result, recovered), hold: shouldHold(j, result), journal: j };
  await record(outcome);
  await deps.journals.remove(j.service);
  return outcome;
}

/** A rollback puts the data back too when the new version may have changed it and a complete backup exists. */
function restoringData(j: Journal): boolean {
  return !!j.backup?.complete && j.backup.restoreOnRollback && j.failure?.phase !== 'backup-files';
}

function resultOf(j: Journal): TxResult {
  if (!j.failure) return 'succeeded';
  if (j.rollbackFailure !== undefined) return 'rollback-failed';
  const changedNothing = PRE_CHANGE_PHASES.includes(j.failure.phase) || j.failure.phase === 'backup-files';
  return j.old && !changedNothing && j.kind !== 'remove' ? 'rolled-back' : 'failed';
}

/** A version is held only when it failed on its own account, never for a transient outage. */
function shouldHold(j: Journal, result: TxResult): boolean {
  if (result === 'succeeded' || result === 'interrupted' || !j.failure) return false;
  const transient = ['DOCKER_UNAVAILABLE', 'PULL_FAILED', 'ABORTED', 'BACKUP_FAILED', 'STATE_LOCKED', 'SOURCE_UNAVAILABLE'].includes(j.failure.code);
  return !transient && j.kind !== 'remove';
}

function toRecord(deps: TxDeps, j: Journal, result: TxResult, recovered: boolean): TransactionRecord {
  const rec: TransactionRecord = { txId: j.txId, service: j.service, kind: j.kind, result, revision: j.revision, startedAt: j.startedAt, finishedAt: isoTime(deps.clock) };
  if (j.old) rec.from = j.old.image;
  if (j.new) rec.to = j.new.image;
  if (recovered) rec.recovered = true;
  if (j.backup?.complete) rec.backup = j.backup.id;
  if (j.failure) {
    rec.code = j.failure.code;
    rec.failedPhase = j.failure.phase;
    if (j.failure.logs) rec.logs = j.failure.logs;
  }
  rec.reason = describeResult(j, result);
  return rec;
}

function describeResult(j: Journal, result: TxResult): string | undefined {
  const why = j.failure ? `${j.failure.phase === 'health-gate' ? '' : `${j.failure.phase}: `}${j.failure.message}` : '';
  switch (result) {
    case 'succeeded':
      return undefined;
    case 'interrupted':
      return `interrupted during ${j.phase}; nothing had changed, the update will be planned again`;
    case 'rolled-back':
      return `rolled back${restoringData(j) ? ` (data restored from backup ${j.backup?.id})` : ''}: ${why}`;
    case 'rollback-failed':
      return `rollback failed: ${j.rollbackFailure}; the update had failed: ${why}`;
    case 'failed':
      return j.failure?.phase === 'backup-files' || j.failure?.phase === 'backup' ? `backup failed, update aborted, nothing changed: ${j.failure.message}` : `failed: ${why}`;
  }
}

function rollbackHealth(health: HealthOptions | undefined): HealthOptions {
  const h = health ?? { timeoutMs: 60_000, stabilizationMs: 2000, probes: [] };
  return { ...h, stabilizationMs: Math.min(h.stabilizationMs, ROLLBACK_STABILISATION_CAP_MS) };
}

function newContainerId(j: Journal): ContainerId {
  const id = j.new?.containerId;
  if (!id) throw new AgentError('INTERNAL', `transaction ${j.txId} has no new container at ${j.phase}`);
  return asContainerId(id);
}

function agentLabels(j: Journal): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.stack]: j.stack,
    [LABELS.service]: j.service,
    [LABELS.specHash]: (j.new as NonNullable<Journal['new']>).hash,
    [LABELS.revision]: j.revision,
    [LABELS.txId]: j.txId,
  };
}
