import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { LABELS } from '../core/labels.js';
import type { ValidationIssue } from '../model/issues.js';
import type { ContainerInfo } from '../model/actual.js';
import { observeStack } from '../observe/observe.js';
import type { PlanStep } from '../model/plan.js';
import type { FailedRecord } from '../model/records.js';
import { assess } from '../reconcile/inspect-desired.js';
import type { AgentState, Condition } from '../model/agent-state.js';
import type { TransactionRecord } from '../model/records.js';
import type { Runtime } from './runtime.js';
import { listBackups } from '../backup/catalog.js';
import { totalBytes } from '../backup/manifest.js';
import { type BackupManifest } from '../model/backup.js';
import { nextRun, type JobRecord, type JobStatus } from '../schedule/scheduler.js';
import { readJsonFile } from '../state/atomic-file.js';
import { isLockLive, readLockFile } from '../state/lock-file.js';
import type { JobSpec } from '../model/desired.js';
import type { ChannelCounters, NotifierState } from '../notify/notifier-state.js';

export interface ServiceView {
  name: string;
  policy?: string;
  desired?: { image: string; hash: string };
  running?: { image: string; hash: string; status: string; health: string; containerId: string; startedAt: string; restartCount: number };
  inSync: boolean;
  lastTransaction?: TransactionRecord;
  held?: FailedRecord;
  waiting?: string;
  pending?: { action: PlanStep['action']; reasons: string[]; nextWindow?: string };
  /** The newest complete backup of the service in the store. */
  lastBackup?: { id: string; reason: string; createdAt: string; bytes: number };
  /** The rollback written back to Git, or being written. */
  revert?: { state: string; commit?: string; reverts?: string; quarantined?: string; reason?: string; at: string; nextAttemptAt?: string };
}

/** Everything `agent status` shows; the `--json` output. Holds no secrets: images, hashes, reasons. */
export interface StatusView {
  agent: { version: string; stateDir: string; runningPid?: number; runningHost?: string };
  stack?: string;
  source?: AgentState['source'];
  conditions: Condition[];
  lastReconcile?: AgentState['lastReconcile'];
  lastAppliedRevision?: string;
  lastAppliedCommit?: AgentState['lastAppliedCommit'];
  /** Versions the desired state asks for that renovate.json quarantines: not applied. */
  quarantined: NonNullable<AgentState['quarantined']>;
  invalid?: { revision: string; at: string; issues: ValidationIssue[] };
  services: ServiceView[];
  interruptedTransactions: { service: string; txId: string; phase: string; startedAt: string }[];
  /** Scheduled jobs of the desired state: schedule, next run, last run and its result. */
  jobs: JobStatus[];
  backupStore: string;
  /** Notification channels: messages sent, failed, held back as repeats, and the last error. */
  notifications: ({ name: string } & ChannelCounters)[];
  recentTransactions: TransactionRecord[];
  /** What could not be read live (the engine, the source): the view then falls back to the recorded state. */
  liveErrors: string[];
}

/** Reads the recorded state and looks at the engine and the source, without changing or locking anything. */
export async function buildStatusView(rt: Runtime, version: string): Promise<StatusView> {
  const state = await rt.store.load();
  const applied = await rt.store.loadApplied();
  const journals = await rt.store.journals.list();
  const view: StatusView = {
    agent: { version, stateDir: rt.config.stateDir },
    conditions: state.conditions,
    services: [],
    quarantined: state.quarantined ?? [],
    jobs: [],
    backupStore: rt.backupStore.location,
    notifications: [],
    interruptedTransactions: journals.map((j) => ({ service: j.service, txId: j.txId, phase: j.phase, startedAt: j.startedAt })),
    recentTransactions: await rt.store.readHistory(10),
    liveErrors: [],
  };
  const notifier = await readJsonFile<NotifierState>(join(rt.config.stateDir, 'notifier.json')).catch(() => undefined);
  for (const [name, ch] of Object.entries(notifier?.channels ?? {})) if (!rt.config.notifications || name in rt.config.notifications.channels) view.notifications.push({ name, ...ch.counters });
  const lock = await readLockFile(join(rt.config.stateDir, 'lock'));
  if (lock && isLockLive(lock.record, lock.mtimeMs)) {
    view.agent.runningPid = lock.record.pid;
    view.agent.runningHost = lock.record.host;
  }
  if (state.stack) view.stack = state.stack;
  if (state.source) view.source = state.source;
  if (state.lastReconcile) view.lastReconcile = state.lastReconcile;
  if (state.lastAppliedRevision) view.lastAppliedRevision = state.lastAppliedRevision;
  if (state.lastAppliedCommit) view.lastAppliedCommit = state.lastAppliedCommit;
  if (state.invalid) view.invalid = state.invalid;

  let desired: Record<string, { image: string; hash: string; policy?: string }> = state.desired?.services ?? {};
  let pending = new Map<string, PlanStep>();
  let running = new Map<string, ContainerInfo>();
  try {
    const a = await assess(await rt.reconcileContext(), applied, state);
    if (a.kind === 'planned') {
      view.stack = a.load.state.stack;
      desired = Object.fromEntries(Object.values(a.load.state.services).map((s) => [s.name, { image: s.spec.image, hash: s.hash, policy: s.agent.policy }]));
      pending = new Map(a.plan.steps.map((s) => [s.service, s]));
      view.quarantined = a.quarantined;
      view.jobs = await jobStatuses(rt.config.stateDir, Object.values(a.load.state.jobs));
      running = currentContainers(a.actual.services);
    } else if (!view.invalid) {
      view.invalid = { revision: a.snapshot.revision, at: '', issues: a.kind === 'invalid' ? a.load.issues : [{ file: `commit ${a.snapshot.revision.slice(0, 12)}`, line: 1, column: 1, pointer: '', message: `signature refused: ${a.reason}` }] };
    }
  } catch (err) {
    view.liveErrors.push(errorMessage(err));
  }
  if (running.size === 0 && view.stack) {
    try {
      running = currentContainers((await observeStack(rt.docker, view.stack)).services);
    } catch (err) {
      if (!view.liveErrors.includes(errorMessage(err))) view.liveErrors.push(errorMessage(err));
    }
  }

  const backups = new Map<string, BackupManifest>();
  try {
    for (const m of await listBackups(rt.backupStore, view.stack ? `${rt.config.host}/${view.stack}/` : '')) if (!backups.has(m.service)) backups.set(m.service, m);
  } catch (err) {
    view.liveErrors.push(`backup store: ${errorMessage(err)}`);
  }
  const names = new Set([...Object.keys(desired), ...running.keys(), ...Object.keys(state.services)]);
  for (const name of [...names].sort()) {
    const d = desired[name];
    const c = running.get(name);
    const s = state.services[name];
    const step = pending.get(name);
    const sv: ServiceView = { name, inSync: !!d && !!c && c.labels[LABELS.specHash] === d.hash && c.status === 'running' };
    if (d) {
      sv.desired = { image: d.image, hash: d.hash };
      if (d.policy) sv.policy = d.policy;
    }
    if (c) sv.running = { image: c.image, hash: c.labels[LABELS.specHash] ?? '', status: c.status, health: c.health, containerId: c.id.slice(0, 12), startedAt: c.startedAt, restartCount: c.restartCount };
    if (s?.lastTransaction) sv.lastTransaction = s.lastTransaction;
    if (s?.failed && (!d || s.failed.hash === d.hash)) sv.held = s.failed;
    if (s?.waiting) sv.waiting = s.waiting;
    const b = backups.get(name);
    if (b) sv.lastBackup = { id: b.id, reason: b.reason, createdAt: b.createdAt, bytes: totalBytes(b) };
    if (s?.revert) {
      const { request: _request, attempts: _attempts, ...shown } = s.revert;
      sv.revert = shown;
    }
    if (step && (step.action !== 'none' || step.held || step.deferred)) sv.pending = { action: step.action, reasons: step.reasons, ...(step.deferred ? { nextWindow: step.deferred } : {}) };
    view.services.push(sv);
  }
  return view;
}

function currentContainers(services: Record<string, { current?: ContainerInfo }>): Map<string, ContainerInfo> {
  const out = new Map<string, ContainerInfo>();
  for (const [name, s] of Object.entries(services)) if (s.current) out.set(name, s.current);
  return out;
}

async function jobStatuses(stateDir: string, jobs: JobSpec[]): Promise<JobStatus[]> {
  const records = (await readJsonFile<Record<string, JobRecord>>(join(stateDir, 'jobs.json')).catch(() => undefined)) ?? {};
  return jobs.map((job) => {
    const rec = records[job.name];
    const next = nextRun(job, new Date(Math.max(Date.now(), rec?.lastRunAt ? Date.parse(rec.lastRunAt) : 0)));
    return { name: job.name, schedule: job.schedule, timezone: job.timezone, ...rec, ...(next ? { nextRunAt: next.toISOString() } : {}), running: false };
  });
}
