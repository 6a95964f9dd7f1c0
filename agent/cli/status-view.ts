import { AgentError, errorMessage, isAgentError } from '../core/errors.js';
import { LABELS } from '../core/labels.js';
import type { ValidationIssue } from '../model/issues.js';
import type { ContainerInfo } from '../model/actual.js';
import { observeStack } from '../observe/observe.js';
import type { Plan, PlanStep } from '../model/plan.js';
import type { Blocked } from '../model/report.js';
import { computeConditions } from '../reconcile/conditions.js';
import type { HeldRecord } from '../model/records.js';
import { assess } from '../reconcile/assess.js';
import { recogniseReloads } from '../reconcile/reload-plan.js';
import type { AgentState, Condition } from '../model/agent-state.js';
import type { TransactionRecord } from '../model/records.js';
import type { ReadOnlyRuntime } from './runtime.js';
import { totalBytes } from '../backup/manifest.js';
import { type BackupManifest, type DrillResult } from '../model/backup.js';
import { nextRun, type JobRecord, type JobStatus } from '../schedule/scheduler.js';
import type { JobSpec } from '../model/desired.js';
import type { ChannelCounters, NotifierState } from '../notify/notifier-state.js';

export interface ServiceView {
  name: string;
  policy?: string;
  desired?: { image: string; hash: string };
  running?: { image: string; hash: string; status: string; health: string; containerId: string; startedAt: string; restartCount: number };
  inSync: boolean;
  lastTransaction?: TransactionRecord;
  held?: HeldRecord;
  waiting?: string;
  pending?: { action: PlanStep['action']; cause: PlanStep['cause']; reasons: string[]; nextWindow?: string };
  /** The newest complete backup of the service in the store. */
  lastBackup?: { id: string; reason: string; createdAt: string; bytes: number; format: 'restic' | 'archive'; added?: number };
  /** The last restore drill of the service: its latest backup restored where nothing runs, and checked. */
  lastDrill?: DrillResult;
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
  /** Git: the branch's tip on the server now, when the agent has not fetched it yet. */
  notFetched?: { revision: string };
}

/**
 * Reads the recorded state and looks at the engine and the source (the last fetched commit),
 * without changing or locking anything. The conditions follow what it sees live: a container
 * stopped by hand is Degraded at once, an engine that answers again is no longer unavailable.
 */
export async function buildStatusView(rt: ReadOnlyRuntime, version: string): Promise<StatusView> {
  const [state, applied, journals, recentTransactions, notifier, holder] = await Promise.all([rt.state.load(), rt.state.loadApplied(), rt.state.journals.list(), rt.state.readHistory(10), rt.state.readDocument<NotifierState>('notifier'), rt.state.agentHolder()]);
  const view: StatusView = {
    agent: { version, stateDir: rt.config.stateDir },
    conditions: state.conditions,
    services: [],
    quarantined: state.quarantined ?? [],
    jobs: [],
    backupStore: rt.backups.location,
    notifications: [],
    interruptedTransactions: journals.map((j) => ({ service: j.service, txId: j.txId, phase: j.phase, startedAt: j.startedAt })),
    recentTransactions,
    liveErrors: [],
  };
  for (const [name, ch] of Object.entries(notifier?.channels ?? {})) if (!rt.config.notifications || name in rt.config.notifications.channels) view.notifications.push({ name, ...ch.counters });
  if (holder) {
    view.agent.runningPid = holder.pid;
    view.agent.runningHost = holder.host;
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
  let live: { plan?: Plan; engineDown?: Blocked; invalid?: AgentState['invalid'] } | undefined;
  try {
    const a = await assess(rt.assessDeps, applied, state);
    if (a.kind === 'planned') {
      view.stack = a.load.state.stack;
      desired = Object.fromEntries(Object.values(a.load.state.services).map((s) => [s.name, { image: s.spec.image, hash: s.hash, policy: s.agent.policy }]));
      pending = new Map(a.plan.steps.map((s) => [s.service, s]));
      view.quarantined = a.quarantined;
      view.jobs = jobStatuses((await rt.state.readDocument<Record<string, JobRecord>>('jobs')) ?? {}, Object.values(a.load.state.jobs), rt.clock.now());
      running = currentContainers(a.actual.services);
      // A service in a transaction is stopped or starting on purpose: its state is the transaction's.
      const inFlight = new Set(journals.map((j) => j.service));
      const steps = a.plan.steps.filter((s) => !inFlight.has(s.service));
      live = { plan: { ...a.plan, steps, changes: steps.filter((s) => s.action !== 'none').length } };
    } else {
      const invalid = { revision: a.snapshot.revision, at: state.invalid?.at ?? '', kind: a.kind === 'refused' ? ('signature' as const) : ('validation' as const), issues: a.kind === 'invalid' ? a.load.issues : [{ file: `commit ${a.snapshot.revision.slice(0, 12)}`, line: 1, column: 1, pointer: '', message: `signature refused: ${a.reason}` }] };
      view.invalid ??= invalid;
      live = { invalid };
    }
  } catch (err) {
    view.liveErrors.push(errorMessage(err));
    if (isAgentError(err, 'DOCKER_UNAVAILABLE')) live = { engineDown: { reason: 'DockerUnavailable', errorClass: 'transient', code: 'DOCKER_UNAVAILABLE', message: `Docker engine unavailable: ${errorMessage(err)}` } };
  }
  if (running.size === 0 && view.stack && !live?.engineDown) {
    try {
      // (a container reloaded in place is seen with the spec it runs, as the plan sees it)
      running = currentContainers(recogniseReloads(await observeStack(rt.docker, view.stack), applied).services);
    } catch (err) {
      if (!view.liveErrors.includes(errorMessage(err))) view.liveErrors.push(errorMessage(err));
    }
  }
  if (live) view.conditions = liveConditions(state, live, !!holder, rt.clock.now());
  const remote = await remoteTip(rt).catch((err: unknown) => {
    view.liveErrors.push(`source: ${errorMessage(err)}`);
    return undefined;
  });
  const fetched = view.source?.commit?.sha ?? view.source?.revision;
  if (remote && remote !== fetched) view.notFetched = { revision: remote };

  const backups = new Map<string, BackupManifest>();
  try {
    for (const m of await rt.backups.list(view.stack ? `${rt.config.host}/${view.stack}/` : '')) if (!backups.has(m.service)) backups.set(m.service, m);
  } catch (err) {
    view.liveErrors.push(`backup store: ${errorMessage(err)}`);
  }
  const drills = (await rt.state.readDocument<Record<string, DrillResult>>('drills')) ?? {};
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
    if (s?.held && (!d || s.held.hash === d.hash)) sv.held = s.held;
    if (s?.waiting) sv.waiting = s.waiting.message;
    const b = backups.get(name);
    if (b) {
      sv.lastBackup = { id: b.id, reason: b.reason, createdAt: b.createdAt, bytes: totalBytes(b), format: b.format ?? 'archive' };
      if (b.artifacts.some((a) => a.added !== undefined)) sv.lastBackup.added = b.artifacts.reduce((n, a) => n + (a.added ?? 0), 0);
    }
    const drill = drills[name];
    if (drill) sv.lastDrill = drill;
    if (s?.revert) {
      const { request: _request, attempts: _attempts, ...shown } = s.revert;
      sv.revert = shown;
    }
    if (step && (step.action !== 'none' || step.held || step.deferred)) sv.pending = { action: step.action, cause: step.cause, reasons: step.reasons, ...(step.deferred ? { nextWindow: step.deferred } : {}) };
    view.services.push(sv);
  }
  return view;
}

/**
 * The conditions of what `status` sees now: the live plan instead of the one of the last pass,
 * the engine as it answers now. A source error only the agent can see (a failed fetch) is kept;
 * so is `Reconciling` while an agent process is in a pass.
 */
function liveConditions(state: AgentState, live: { plan?: Plan; engineDown?: Blocked; invalid?: AgentState['invalid'] }, agentRunning: boolean, now: number): Condition[] {
  const recorded = state.lastReconcile?.blocked;
  const blocked = live.engineDown ?? (recorded?.reason === 'SourceUnavailable' && state.source?.error ? recorded : undefined);
  const conds = computeConditions({ state: live.invalid ? { ...state, invalid: live.invalid } : state, ...(live.plan ? { pending: live.plan } : {}), ...(blocked ? { blocked } : {}), now: new Date(now).toISOString() });
  const reconciling = state.conditions.find((c) => c.type === 'Reconciling');
  return agentRunning && reconciling?.status === 'True' ? conds.map((c) => (c.type === 'Reconciling' ? reconciling : c)) : conds;
}

/** The branch's tip on the server, within a few seconds (status must stay quick when the server is down). */
async function remoteTip(rt: ReadOnlyRuntime): Promise<string | undefined> {
  if (!rt.source.remoteRevision) return undefined;
  const timeout = AbortSignal.timeout(5000);
  return Promise.race([
    rt.source.remoteRevision(timeout),
    new Promise<undefined>((_resolve, reject) => timeout.addEventListener('abort', () => reject(new AgentError('SOURCE_UNAVAILABLE', `${rt.source.location} did not answer within 5 s`)), { once: true })),
  ]);
}

function currentContainers(services: Record<string, { current?: ContainerInfo }>): Map<string, ContainerInfo> {
  const out = new Map<string, ContainerInfo>();
  for (const [name, s] of Object.entries(services)) if (s.current) out.set(name, s.current);
  return out;
}

function jobStatuses(records: Record<string, JobRecord>, jobs: JobSpec[], now: number): JobStatus[] {
  return jobs.map((job) => {
    const rec = records[job.name];
    const next = nextRun(job, new Date(Math.max(now, rec?.lastRunAt ? Date.parse(rec.lastRunAt) : 0)));
    return { name: job.name, schedule: job.schedule, timezone: job.timezone, ...rec, ...(next ? { nextRunAt: next.toISOString() } : {}), running: false };
  });
}
