import { agentLabels, composeResourceLabels } from './container-labels.js';
import { restoringData, resultOf, shouldHold, toRecord } from './tx-record.js';
import { noProjectFiles } from '../ports/project-files.js';
import { injectedArchive } from './inject.js';
import { randomBytes } from 'node:crypto';
import { isoTime } from '../core/clock.js';
import { AgentError, errorMessage, toAgentError } from '../core/errors.js';
import { asContainerId } from '../core/ids.js';
import { LABELS, containerName, previousContainerName } from '../core/labels.js';
import { networkHash } from '../desired/normalize-networks.js';
import type { HealthOptions } from '../model/desired.js';
import { PRE_CHANGE_PHASES, isStartFirst, type Journal, type JournalNew, type JournalOld, type TxKind, type TxPhase } from '../model/journal.js';
import type { StepCurrent, StepTarget } from '../model/plan.js';
import type { TransactionRecord } from '../model/records.js';
import type { TxDeps } from './types.js';
import { drain, retireOld, switchAliases } from './start-first.js';
import { reload, rollbackReload, rollbackSwapFiles, swapFiles } from './reload.js';
import type { ReloadMount } from '../model/plan.js';
import { mustNew, mustOld, newContainerId } from './tx-journal.js';

/** One service's transaction, as the plan decided it. */
export interface TransactionRequest {
  stack: string;
  service: string;
  kind: TxKind;
  /** The source revision of what is applied. */
  revision: string;
  /** The live container, when there is one. */
  old?: StepCurrent;
  /** What to create (absent for a removal). */
  target?: StepTarget;
  /** The target is the last applied spec while the desired one is held, paused or deferred. */
  repair?: boolean;
  /** Applied in place: the live folders of the old container change, and its reload command runs. */
  reload?: ReloadMount[];
}

export interface TransactionOutcome {
  record: TransactionRecord;
  /** The desired spec failed for reasons of its own (a terminal error): not retried until the desired state changes. */
  held: boolean;
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
  const j: Journal = { version: 1, txId: deps.newTxId(), stack: req.stack, service: req.service, kind: req.kind, revision: req.revision, startedAt: isoTime(deps.clock), phase: 'pull', trail: [] };
  if (req.repair) j.repair = true;
  if (req.target) j.new = journalNew(req.target);
  if (req.old) j.old = journalOld(req.old, j.new);
  if (req.reload && j.old && j.new) {
    j.reload = { mounts: req.reload };
    j.new.containerId = j.old.containerId;
  }
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
  // A reload's container never stopped: its gate simply runs again.
  if (j.phase === 'health-gate' && !j.reload) await enter(deps, j, 'start-new');
  return drive(deps, j, record, signal, true);
}

function journalNew(t: StepTarget): JournalNew {
  return { hash: t.hash, image: t.image, spec: t.spec, agent: t.agent, dependsOn: t.dependsOn, externalVolumes: t.externalVolumes, ...(t.networks ? { networks: t.networks } : {}), ...(t.volumeLabels ? { volumeLabels: t.volumeLabels } : {}), ...(t.volumeDrivers ? { volumeDrivers: t.volumeDrivers } : {}) };
}

function journalOld(c: StepCurrent, target: JournalNew | undefined): JournalOld {
  const old: JournalOld = { containerId: c.containerId, name: c.name, image: c.image, hash: c.hash, restartPolicy: c.restartPolicy, stopTimeoutMs: target?.spec.stopGracePeriodMs ?? 10_000 };
  if (c.agent) old.agent = c.agent;
  return old;
}

/** One step of the transaction: does its work (idempotently) and names the next phase. */
type Phase = (deps: TxDeps, j: Journal, signal?: AbortSignal) => Promise<TxPhase>;

const PHASES: Record<Exclude<TxPhase, 'finish'>, Phase> = {
  pull,
  backup,
  'stop-old': stopOld,
  'backup-files': backupFiles,
  'rename-old': renameOld,
  'create-new': createNew,
  'start-new': startNew,
  'health-gate': healthGate,
  'remove-old': removeOld,
  switch: switchAliases,
  drain,
  'retire-old': retireOld,
  'swap-files': swapFiles,
  reload,
  'rollback-swap-files': rollbackSwapFiles,
  'rollback-reload': rollbackReload,
  'rollback-remove-new': rollbackRemoveNew,
  'rollback-restore-files': rollbackRestoreFiles,
  'rollback-restore-old': rollbackRestoreOld,
  'rollback-restore-db': rollbackRestoreDb,
  'rollback-check-old': rollbackCheckOld,
};

async function drive(deps: TxDeps, j: Journal, record: RecordOutcome, signal: AbortSignal | undefined, recovered: boolean): Promise<TransactionOutcome> {
  for (;;) {
    const phase = j.phase;
    if (phase === 'finish') return finish(deps, j, record, recovered);
    deps.failpoint(`before:${phase}`);
    let next: TxPhase;
    try {
      next = await PHASES[phase](deps, j, signal);
    } catch (err) {
      next = afterFailure(deps, j, phase, toAgentError(err, 'INTERNAL'));
    }
    deps.failpoint(`after:${phase}`);
    if (next === 'finish') j.result = resultOf(j);
    await enter(deps, j, next);
  }
}

/** Where a transaction goes when a phase throws; throws itself when the journal must stay for a later resume. */
function afterFailure(deps: TxDeps, j: Journal, phase: Exclude<TxPhase, 'finish'>, e: AgentError): TxPhase {
  const failure = { code: e.code, errorClass: e.errorClass, message: e.message, phase, at: isoTime(deps.clock) };
  const inRollback = phase.startsWith('rollback-');
  if (inRollback && (phase === 'rollback-restore-files' || phase === 'rollback-restore-db') && e.code !== 'DOCKER_UNAVAILABLE') {
    // Data that cannot be put back must not keep the old version down: start it, and say
    // loudly that it runs on the new version's data.
    j.rollbackFailure = `the data could not be restored from backup ${j.backup?.id}: ${e.message}`;
    return phase === 'rollback-restore-files' ? 'rollback-restore-old' : 'rollback-check-old';
  }
  if (inRollback) throw e;
  if (phase === 'backup-files') {
    // The old container is only stopped (start-first: still running): undo that, nothing else changed.
    j.failure = failure;
    return isStartFirst(j) ? 'finish' : 'rollback-restore-old';
  }
  // Start-first, past the switch: an engine error there says nothing of the new version (the
  // drain's watch rolls back on its own verdict); retiring the old one is finished on a later
  // pass, never undone.
  if (isStartFirst(j) && (phase === 'drain' || phase === 'retire-old' || phase === 'remove-old')) throw e;
  // Transient trouble (engine restarting, aborted) after something changed: keep the journal
  // and resume later, rather than judging the new version by it.
  if (e.errorClass === 'transient' && !PRE_CHANGE_PHASES.includes(phase)) throw e;
  j.failure = failure;
  if (PRE_CHANGE_PHASES.includes(phase) || j.kind === 'remove') return 'finish';
  return j.reload ? 'rollback-swap-files' : 'rollback-remove-new';
}

async function pull(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  const canonical = j.new ? containerName(j.stack, j.service, j.new.spec.containerName) : undefined;
  const holder = canonical ? await deps.docker.inspectContainer(canonical) : undefined;
  if (canonical && holder && holder.id !== j.old?.containerId && holder.labels[LABELS.txId] !== j.txId) {
    throw new AgentError('CONTAINER_CREATE_FAILED', `a container named ${canonical} exists that this agent does not manage for service ${j.service}; rename or remove it`, { data: { name: canonical } });
  }
  if (j.kind === 'remove') return 'stop-old';
  const target = mustNew(j);
  const policy = target.agent.pullPolicy;
  const present = await deps.docker.hasImage(target.image);
  if (policy === 'never' && !present) throw new AgentError('PULL_FAILED', `${target.image} is not on the host, and pull_policy: never forbids pulling it (load it with docker load; the next pass tries again)`, { data: { image: target.image } });
  if (policy === 'always' || (!present && policy !== 'never')) await deps.docker.pullImage(target.image, { signal, ...(target.spec.platform ? { platform: target.spec.platform } : {}) });
  // The repository's files at the target's revision, and its data directories: additive too.
  await (deps.files ?? noProjectFiles).prepare(target.spec.volumes, j.revision, signal);
  // Networks before anything changes: creating one is additive, and a refusal changes nothing.
  await ensureNetworks(deps, j, target);
  // A reload changes files only: nothing of the service's data to back up.
  return j.reload ? 'swap-files' : 'backup';
}

async function backup(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  // Nothing to keep for a first deploy: there is no previous version to return to.
  const taken = j.old ? await deps.backup.begin(j, signal) : undefined;
  if (taken) {
    j.backup = taken;
    await deps.journals.write(j);
  }
  if (!j.old) return 'create-new';
  // Start-first: the old container keeps serving while the backup is finished.
  return isStartFirst(j) ? 'backup-files' : 'stop-old';
}

async function stopOld(deps: TxDeps, j: Journal): Promise<TxPhase> {
  const old = mustOld(j);
  const c = await deps.docker.inspectContainer(old.containerId);
  if (c) {
    // Disarm the restart policy first: an engine restart must not bring the old copy back
    // beside the new one.
    if (c.restartPolicy !== 'no') await deps.docker.setRestartPolicy(c.id, 'no');
    await deps.docker.stopContainer(c.id, old.stopTimeoutMs);
  }
  return j.kind === 'remove' ? 'remove-old' : 'backup-files';
}

async function backupFiles(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  if (j.backup && !j.backup.complete) {
    await deps.backup.complete(j, j.backup, signal);
    j.backup.complete = true;
    j.backup.committed = false;
    await deps.journals.write(j);
  }
  return 'rename-old';
}

async function renameOld(deps: TxDeps, j: Journal): Promise<TxPhase> {
  const c = await deps.docker.inspectContainer(mustOld(j).containerId);
  const kept = previousContainerName(j.stack, j.service, j.txId);
  if (c && c.name !== kept) await deps.docker.renameContainer(c.id, kept);
  return 'create-new';
}

async function createNew(deps: TxDeps, j: Journal): Promise<TxPhase> {
  const target = mustNew(j);
  for (const m of target.spec.volumes.filter((v) => v.type === 'volume')) {
    if (target.externalVolumes.includes(m.source)) {
      if (!(await deps.docker.volumeExists(m.source))) throw new AgentError('CONTAINER_CREATE_FAILED', `external volume ${m.source} does not exist`, { data: { volume: m.source } });
    } else {
      await deps.docker.ensureVolume(m.source, { ...(target.volumeLabels?.[m.source] ?? {}), ...composeResourceLabels(j.stack, 'volume', m.source), [LABELS.managed]: 'true', [LABELS.stack]: j.stack }, target.volumeDrivers?.[m.source]);
    }
  }
  await ensureNetworks(deps, j, target);
  const existing = (await deps.docker.listContainers({ [LABELS.txId]: j.txId })).find((c) => c.id !== j.old?.containerId);
  const spec = await creationSpec(deps, j, target);
  target.containerId = existing?.id ?? (await deps.docker.createContainer({ name: containerName(j.stack, j.service, target.spec.containerName), spec, labels: agentLabels(j, target) }));
  await deps.journals.write(j);
  // Secrets and configs from the environment or inline, before the first start (again on resume: the same bytes).
  if (target.spec.files?.length) await deps.docker.putArchive(asContainerId(target.containerId), '/', injectedArchive(target.spec.files));
  return 'start-new';
}

/**
 * The spec a container is created from: start-first, on the networks without the service's
 * aliases (nothing reaches it before its gate passed); with `x-agent.reload`, binding live
 * folders of its own instead of the copies of the repository's folders.
 */
async function creationSpec(deps: TxDeps, j: Journal, target: JournalNew): Promise<JournalNew['spec']> {
  let spec = target.spec;
  if (isStartFirst(j)) spec = { ...spec, networks: spec.networks?.map((a) => ({ ...a, aliases: [] })) };
  if (target.agent.reload) {
    const files = deps.files ?? noProjectFiles;
    const volumes = [];
    for (const m of spec.volumes) volumes.push(m.project?.kind === 'dir' ? { ...m, source: await files.live(j.txId, m) } : m);
    spec = { ...spec, volumes };
  }
  return spec;
}

/** The networks the target joins: created when missing; an external one must exist. Idempotent. */
async function ensureNetworks(deps: TxDeps, j: Journal, target: JournalNew): Promise<void> {
  for (const n of target.networks ?? []) {
    if (n.external) {
      if (!(await deps.docker.networkExists(n.name))) throw new AgentError('CONTAINER_CREATE_FAILED', `external network ${n.name} does not exist`, { data: { network: n.name } });
    } else {
      await deps.docker.ensureNetwork(n, { ...composeResourceLabels(j.stack, 'network', n.name), [LABELS.managed]: 'true', [LABELS.stack]: j.stack, [LABELS.networkHash]: networkHash(n) });
    }
  }
}

async function startNew(deps: TxDeps, j: Journal): Promise<TxPhase> {
  await deps.docker.startContainer(newContainerId(j));
  // The backup's manifest, out of the downtime window: the new version is starting.
  await commitBackup(deps, j);
  return 'health-gate';
}

/**
 * Writes the manifest of the transaction's backup once its artifacts are all taken (again after
 * a crash: idempotent). Tried after the new container starts, as a rollback begins, and before
 * the old container is removed. The transaction does not wait for the store: the journal holds
 * what the backup is, for the rollback. A backup whose manifest could never be written is not
 * listed, and the next backup of the service removes its data.
 */
async function commitBackup(deps: TxDeps, j: Journal): Promise<void> {
  if (!j.backup?.complete || j.backup.committed !== false) return;
  try {
    await deps.backup.commit(j, j.backup);
  } catch (err) {
    deps.log.warn({ service: j.service, tx: j.txId, backup: j.backup.id, err: errorMessage(err) }, 'Could not write the manifest of the backup taken before the update (tried again before the transaction ends)');
    return;
  }
  j.backup.committed = true;
  await deps.journals.write(j);
}

async function healthGate(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  const verdict = await deps.gate(newContainerId(j), mustNew(j).agent.health, signal);
  // A gate cut short by shutdown says nothing about the version: resume it on restart.
  if (signal?.aborted) throw new AgentError('ABORTED', 'health gate interrupted by shutdown');
  if (verdict.ok) return !j.old || j.reload ? 'finish' : isStartFirst(j) ? 'switch' : 'remove-old';
  j.failure = { code: 'HEALTH_CHECK_FAILED', errorClass: 'terminal', message: verdict.reason, gate: verdict.failure, phase: 'health-gate', at: isoTime(deps.clock) };
  // The reason may quote the container's output (and so a secret): the recorded outcome has it, redacted.
  deps.log.warn({ service: j.service, tx: j.txId, failure: verdict.failure.kind }, 'Health gate failed; rolling back');
  return j.reload ? 'rollback-swap-files' : 'rollback-remove-new';
}

async function removeOld(deps: TxDeps, j: Journal): Promise<TxPhase> {
  await commitBackup(deps, j);
  await deps.docker.removeContainer(asContainerId(mustOld(j).containerId));
  return 'finish';
}

async function rollbackRemoveNew(deps: TxDeps, j: Journal): Promise<TxPhase> {
  // A backup taken for this update stays listed after the rollback, as the data before it.
  await commitBackup(deps, j);
  const leftovers = await deps.docker.listContainers({ [LABELS.txId]: j.txId });
  for (const c of leftovers.filter((x) => x.id !== j.old?.containerId)) {
    if (j.failure && j.failure.logs === undefined) {
      j.failure.logs = await deps.docker.logs(c.id, 30).catch(() => '');
      await deps.journals.write(j);
    }
    await deps.docker.removeContainer(c.id);
  }
  if (!j.old) return 'finish';
  return restoringData(j) ? 'rollback-restore-files' : 'rollback-restore-old';
}

async function rollbackRestoreFiles(deps: TxDeps, j: Journal): Promise<TxPhase> {
  if (j.backup) await deps.backup.restoreFiles(j, j.backup);
  return 'rollback-restore-old';
}

async function rollbackRestoreOld(deps: TxDeps, j: Journal): Promise<TxPhase> {
  const old = mustOld(j);
  const c = await deps.docker.inspectContainer(old.containerId);
  if (!c) {
    j.rollbackFailure = `the previous container ${old.name} no longer exists`;
    return 'finish';
  }
  // Back under the name it had: a target with another container_name is gone by now.
  if (c.name !== old.name) await deps.docker.renameContainer(c.id, old.name);
  if (c.restartPolicy !== old.restartPolicy) await deps.docker.setRestartPolicy(c.id, old.restartPolicy);
  await deps.docker.startContainer(c.id);
  return restoringData(j) && j.backup && deps.backup.needsDatabaseRestore(j, j.backup) && !j.rollbackFailure ? 'rollback-restore-db' : 'rollback-check-old';
}

async function rollbackRestoreDb(deps: TxDeps, j: Journal): Promise<TxPhase> {
  if (j.backup) await deps.backup.restoreDatabase(j, j.backup);
  return 'rollback-check-old';
}

async function rollbackCheckOld(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  const old = mustOld(j);
  const verdict = await deps.gate(asContainerId(old.containerId), rollbackHealth(old.agent?.health, j.new?.agent.rollbackMonitorMs ?? old.agent?.rollbackMonitorMs), signal);
  // Cut short by shutdown: says nothing about the old version; the check runs again on restart.
  if (signal?.aborted) throw new AgentError('ABORTED', 'the check of the previous version was interrupted by shutdown');
  if (!verdict.ok) j.rollbackFailure = verdict.reason;
  return 'finish';
}

async function enter(deps: TxDeps, j: Journal, phase: TxPhase): Promise<void> {
  j.phase = phase;
  j.trail.push({ phase, at: isoTime(deps.clock) });
  await deps.journals.write(j);
}

async function finish(deps: TxDeps, j: Journal, record: RecordOutcome, recovered: boolean): Promise<TransactionOutcome> {
  const result = j.result ?? resultOf(j);
  const outcome: TransactionOutcome = { record: toRecord(deps, j, result, recovered), held: shouldHold(j, result), journal: j };
  await record(outcome);
  await deps.journals.remove(j.service);
  return outcome;
}

/** The check of the previous version after a rollback: its own health options, with a shorter stabilisation window. */
function rollbackHealth(health: HealthOptions | undefined, monitorMs: number | undefined): HealthOptions {
  const h = health ?? { timeoutMs: 60_000, stabilizationMs: 2000, probes: [] };
  // deploy.rollback_config.monitor of the version rolled back, else the old one's window, capped.
  return { ...h, stabilizationMs: monitorMs ?? Math.min(h.stabilizationMs, ROLLBACK_STABILISATION_CAP_MS) };
}
