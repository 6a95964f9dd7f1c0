import { LABELS, containerName, legacyContainerName } from '../core/labels.js';
import { recogniseReloads } from './reload-plan.js';
import type { Logger } from 'pino';
import { executePlan, type ExecuteSummary } from '../apply/execute-plan.js';
import { resumeTransaction, type TransactionOutcome } from '../apply/transaction.js';
import type { TxDeps } from '../apply/types.js';
import type { ProjectFilesPort } from '../ports/project-files.js';
import { isoTime } from '../core/clock.js';
import { AgentError, errorMessage, isAgentError, toAgentError, type ErrorCode } from '../core/errors.js';
import type { Failpoint } from '../core/failpoints.js';
import { DEFAULT_RETENTION } from '../desired/normalize-backup.js';
import type { Env } from '../desired/interpolate.js';
import type { ActualState } from '../model/actual.js';
import type { AgentState } from '../model/agent-state.js';
import type { BackupPolicy } from '../model/desired.js';
import { formatIssue, type ValidationIssue } from '../model/issues.js';
import type { Plan } from '../model/plan.js';
import type { Blocked, BlockedReason, ReconcileReport, ReconcileResult } from '../model/report.js';
import type { RevertOutcome } from '../model/revert.js';
import type { TransactionRecord } from '../model/records.js';
import type { SourceSnapshot } from '../model/source.js';
import { observeStack } from '../observe/observe.js';
import { redactText } from '../source/git/credentials.js';
import { addKnownSecrets } from '../core/known-secrets.js';
import { planChanges } from '../plan/plan.js';
import type { DockerPort } from '../ports/docker.js';
import type { StatePort } from '../ports/state.js';
import type { TxBackup } from '../ports/tx-backup.js';
import type { RevertDeps } from '../revert/revert.js';
import { assess, heldSpecs, type AssessDeps, type Assessment } from './assess.js';
import { computeConditions, setReconciling } from './conditions.js';
import { outcomeRecorder, PassState } from './pass-state.js';
import { processReverts } from './reverts.js';

/** What a reconcile pass needs; built once by the runtime and reused by every pass of `agent run`. */
export interface ReconcileDeps extends AssessDeps {
  docker: DockerPort;
  state: StatePort;
  concurrency: number;
  /** The backup steps of transactions, with the stack's retention policy. */
  txBackup: (policy: BackupPolicy) => TxBackup;
  failpoint: Failpoint;
  gate: TxDeps['gate'];
  newTxId: () => string;
  /** The copies of the repository's files the targets bind, and the stack's data directories. */
  projectFiles?: ProjectFilesPort;
  /** Values never to write anywhere (the env file's), read for each pass: redacted from container output. */
  secrets: () => Promise<string[]>;
  /** Git sources: how to write a rollback back to the repository. Absent: no revert commits. */
  revert?: Omit<RevertDeps, 'env' | 'defaultStack' | 'roots' | 'hashKey' | 'clock' | 'log' | 'failpoint'>;
}

export interface ReconcileOptions {
  /** Stop starting new transactions (graceful shutdown). */
  signal?: AbortSignal;
  /** Cut running transactions short; their journals resume at the next start. */
  txSignal?: AbortSignal;
  /** Services whose maintenance window is ignored (`agent apply --now`); `'*'` for all. */
  ignoreWindows?: ReadonlySet<string>;
}

/** One pass in the making: what it read once, and what it did so far. */
interface Pass {
  deps: ReconcileDeps;
  opts: ReconcileOptions;
  state: PassState;
  startedAt: string;
  log: Logger;
  secrets: Set<string>;
  tx: TxDeps;
  transactions: TransactionRecord[];
}

/**
 * One reconcile, as Flux's: sort the case (engine down, journal to resume, source refused or
 * invalid), then named steps: resume, assess, tidy, apply, write back, settle. Invalid desired
 * state changes nothing that runs. The caller holds the state directory lock.
 */
export async function reconcileOnce(deps: ReconcileDeps, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const pass = await begin(deps, opts);
  const engine = await checkEngine(pass);
  if (engine) return settle(pass, { result: 'error', message: engine.message, blocked: engine });

  const resumed = await resume(pass);
  if ('blocked' in resumed) return settle(pass, { result: 'error', message: resumed.blocked.message, blocked: resumed.blocked });

  await renameLegacy(pass);
  const assessed = await assessSource(pass);
  if ('blocked' in assessed) return settle(pass, { result: 'error', message: assessed.blocked.message, blocked: assessed.blocked });
  const a = assessed.assessment;
  if (a.kind !== 'planned') return refuse(pass, a);

  recordDesired(pass, a);
  const tidied = await tidy(pass, a.actual);
  const summary = await apply(pass, a);
  const reverts = await writeBack(pass, a);
  await pruneProjectFiles(pass, a);

  const touched = tidied > 0 || summary.outcomes.length > 0 || summary.networksRemoved > 0 || Object.values(summary.waiting).some((w) => w.reason === 'interrupted');
  // Nothing touched (most passes): what was observed still holds, no need to ask the engine again.
  const after = planAfter(pass, a, touched ? await observeStack(deps.docker, a.load.state.stack) : a.actual);
  return settle(pass, outcomeOf(pass, a, summary, after, reverts));
}

async function begin(deps: ReconcileDeps, opts: ReconcileOptions): Promise<Pass> {
  const state = await PassState.load(deps.state);
  const secrets = new Set(await deps.secrets());
  const log = deps.log;
  const tx: TxDeps = { docker: deps.docker, journals: deps.state.journals, clock: deps.clock, log, backup: deps.txBackup({ retention: { ...DEFAULT_RETENTION } }), failpoint: deps.failpoint, gate: deps.gate, newTxId: deps.newTxId, ...(deps.projectFiles ? { files: deps.projectFiles } : {}) };
  return { deps, opts, state, startedAt: isoTime(deps.clock), log, secrets, tx, transactions: [] };
}

/** The engine must answer before anything else is looked at. */
async function checkEngine(pass: Pass): Promise<Blocked | undefined> {
  try {
    await pass.deps.docker.ping(pass.opts.signal);
    return undefined;
  } catch (err) {
    pass.log.error({ err: errorMessage(err) }, 'Docker engine unavailable');
    return blocked('DockerUnavailable', `Docker engine unavailable: ${errorMessage(err)}`, err);
  }
}

/** Finish what an earlier run left half-done, before looking at anything else. */
async function resume(pass: Pass): Promise<{ outcomes: TransactionOutcome[] } | { blocked: Blocked }> {
  const outcomes: TransactionOutcome[] = [];
  const journals = await pass.deps.state.journals.list();
  if (journals.length === 0) return { outcomes };
  await reconciling(pass, `finishing ${journals.length} interrupted transaction(s)`);
  const record = recorder(pass);
  for (const journal of journals) {
    try {
      const outcome = await resumeTransaction(pass.tx, journal, record, pass.opts.txSignal);
      outcomes.push(outcome);
      pass.transactions.push(outcome.record);
    } catch (err) {
      pass.log.error({ service: journal.service, tx: journal.txId, err: errorMessage(err) }, 'Could not resume transaction; will retry');
      // A journal must be finished before anything else: whatever stopped it, it is tried again soon.
      const b = blocked(isAgentError(err, 'DOCKER_UNAVAILABLE') ? 'DockerUnavailable' : 'InternalError', `transaction ${journal.txId} of ${journal.service} could not be resumed: ${errorMessage(err)}`, err);
      return { blocked: { ...b, errorClass: 'transient' } };
    }
  }
  // A rollback finished after a restart is written back like any other: its revert was queued
  // with its outcome (the recorder), so an early end of this pass cannot lose it.
  return { outcomes };
}

/** Read the source, validate, observe, plan; record what the source said. */
async function assessSource(pass: Pass): Promise<{ assessment: Assessment } | { blocked: Blocked }> {
  const { deps } = pass;
  let assessment: Assessment;
  try {
    assessment = await assess(deps, pass.state.applied, pass.state.state, { ...(pass.opts.signal ? { signal: pass.opts.signal } : {}), ...(pass.opts.ignoreWindows ? { ignoreWindows: pass.opts.ignoreWindows } : {}) });
  } catch (err) {
    const message = errorMessage(err);
    pass.state.change((s) => {
      s.source = { ...(s.source ?? { kind: deps.source.kind, location: deps.source.location }), error: message, errorAt: isoTime(deps.clock) };
    });
    pass.log.error({ err: message }, 'Could not read the desired state');
    const reason: BlockedReason = isAgentError(err, 'DOCKER_UNAVAILABLE') ? 'DockerUnavailable' : isAgentError(err) && err.code.startsWith('SOURCE_') ? 'SourceUnavailable' : 'InternalError';
    return { blocked: blocked(reason, message, err) };
  }
  pass.state.change((s) => recordSource(s, deps, assessment.snapshot, isoTime(deps.clock)));
  if (assessment.snapshot.fetchError) pass.log.warn({ err: assessment.snapshot.fetchError, revision: assessment.snapshot.revision }, 'Fetch failed; using the last fetched commit');
  return { assessment };
}

/** A refused signature or an invalid desired state: recorded, nothing applied. */
function refuse(pass: Pass, a: Extract<Assessment, { kind: 'refused' | 'invalid' }>): Promise<ReconcileReport> {
  const { snapshot } = a;
  const issues: ValidationIssue[] = a.kind === 'refused' ? [{ file: `commit ${snapshot.revision.slice(0, 12)}`, line: 1, column: 1, pointer: '', message: `signature refused: ${a.reason}` }] : a.load.issues;
  pass.state.change((s) => {
    s.invalid = { revision: snapshot.revision, at: isoTime(pass.deps.clock), issues, kind: a.kind === 'refused' ? 'signature' : 'validation' };
  });
  const errors = issues.filter((i) => i.severity !== 'warning');
  const denied = errors.filter((i) => i.policy !== undefined);
  // The first refusal, located: a policy violation first, since its fix may be the operator's.
  const first = denied[0] ?? errors[0];
  const reason = a.kind === 'refused' ? 'SignatureRefused' : denied.length > 0 ? 'PolicyDenied' : 'ValidationFailed';
  pass.log.error({ revision: snapshot.revision, errors: errors.length, kind: a.kind, reason, ...(first ? { first: formatIssue(first) } : {}) }, 'Desired state refused; nothing applied');
  return settle(pass, { result: 'invalid', message: `desired state ${snapshot.revision} ${a.kind === 'refused' ? 'has a refused signature' : denied.length > 0 ? "is refused by the operator's policy" : 'is invalid'}`, revision: snapshot.revision, issues, ...sourceTrouble(snapshot) });
}

function recordDesired(pass: Pass, a: Extract<Assessment, { kind: 'planned' }>): void {
  const desired = a.load.state;
  for (const s of a.load.secrets) pass.secrets.add(s);
  addKnownSecrets(a.load.secrets);
  pass.state.change((s) => {
    delete s.invalid;
    s.stack = desired.stack;
    s.quarantined = a.quarantined;
    s.desired = { revision: desired.revision, loadedAt: s.desired?.revision === desired.revision ? s.desired.loadedAt : isoTime(pass.deps.clock), services: Object.fromEntries(Object.values(desired.services).map((d) => [d.name, { image: d.spec.image, hash: d.hash, policy: d.agent.policy }])) };
    // A held spec is forgotten once the desired state asks for something else.
    for (const [name, svc] of Object.entries(s.services)) {
      const d = desired.services[name];
      if (svc.held && d?.hash !== svc.held.hash && (d?.legacyHash === undefined || d.legacyHash !== svc.held.hash)) delete svc.held;
    }
  });
}

/**
 * Containers of a service other than its live one are leftovers of a transaction that finished
 * without removing them (every journal was resumed above): removed so that two copies never run.
 */
async function tidy(pass: Pass, actual: ActualState): Promise<number> {
  let removed = 0;
  for (const svc of Object.values(actual.services)) {
    for (const c of svc.others) {
      pass.log.warn({ service: svc.name, container: c.name }, 'Removing leftover container');
      await pass.deps.docker.removeContainer(c.id).catch((err: unknown) => {
        throw new AgentError('DOCKER_UNAVAILABLE', `cannot remove leftover container ${c.name}: ${errorMessage(err)}`, { cause: err, data: { container: c.name } });
      });
      removed++;
    }
  }
  return removed;
}

/**
 * The copies of repository files that no spec may bind any more (neither the desired one, nor
 * an applied one a rollback or a held service falls back to) are removed; not while a
 * transaction is unfinished.
 */
async function pruneProjectFiles(pass: Pass, a: Extract<Assessment, { kind: 'planned' }>): Promise<void> {
  const files = pass.deps.projectFiles;
  if (!files || (await pass.deps.state.journals.list()).length > 0) return;
  const specs = [...Object.values(a.load.state.services).map((s) => s.spec), ...Object.values(pass.state.applied).map((r) => r.spec)];
  const keep = new Set(specs.flatMap((s) => s.volumes.flatMap((m) => (m.project ? [m.project.digest] : []))));
  const removed = await files.prune(keep).catch((err: unknown) => {
    pass.log.warn({ err: errorMessage(err) }, 'Could not remove unused copies of repository files');
    return [] as string[];
  });
  if (removed.length > 0) pass.log.info({ removed: removed.length }, 'Removed unused copies of repository files');
  // The live folders of containers that are gone (x-agent.reload): each container's are keyed by the
  // transaction that created it. Read from the engine now: this pass may have created containers.
  const live = async () => new Set((await pass.deps.docker.listContainers({ [LABELS.managed]: 'true' })).flatMap((c) => c.labels[LABELS.txId] ?? []));
  const gone = await files.pruneLive(live).catch((err: unknown) => {
    pass.log.warn({ err: errorMessage(err) }, 'Could not remove the live folders of removed containers');
    return [] as string[];
  });
  if (gone.length > 0) pass.log.info({ removed: gone.length }, 'Removed the live folders of removed containers');
}

/**
 * Containers of an earlier agent, named `<stack>-<service>`, get Compose's name
 * (`<stack>-<service>-1`) in place: a rename keeps them running, and a service that shares
 * one's namespace or links to it (`container:<stack>-db-1`) finds it under the name it expects.
 */
async function renameLegacy(pass: Pass): Promise<void> {
  const docker = pass.deps.docker;
  const mine = await docker.listContainers({ [LABELS.managed]: 'true' }).catch(() => []);
  const names = new Set(mine.map((c) => c.name));
  for (const c of mine) {
    const stack = c.labels[LABELS.stack];
    const service = c.labels[LABELS.service];
    if (!stack || !service || c.name !== legacyContainerName(stack, service)) continue;
    const next = containerName(stack, service);
    if (names.has(next)) continue;
    await docker.renameContainer(c.id, next).then(
      () => pass.log.info({ service, from: c.name, to: next }, 'Container renamed as Compose names it'),
      (err: unknown) => pass.log.warn({ service, err: errorMessage(err) }, 'Could not rename the container as Compose names it'),
    );
  }
}

/** Run the plan, each change as its own transaction. */
async function apply(pass: Pass, a: Extract<Assessment, { kind: 'planned' }>): Promise<ExecuteSummary> {
  const desired = a.load.state;
  if (a.plan.changes > 0) await reconciling(pass, `applying ${a.plan.changes} change(s) of ${desired.revision}`);
  const log = pass.log.child({ revision: desired.revision });
  const summary = await executePlan(
    { docker: pass.deps.docker, locks: pass.deps.state.locks, tx: { ...pass.tx, log, backup: pass.deps.txBackup(desired.backups) }, record: recorder(pass), log, concurrency: pass.deps.concurrency, ...(pass.opts.signal ? { signal: pass.opts.signal } : {}), ...(pass.opts.txSignal ? { txSignal: pass.opts.txSignal } : {}) },
    a.plan,
  );
  pass.transactions.push(...summary.outcomes.map((o) => o.record));
  pass.state.change((s) => {
    for (const svc of Object.values(s.services)) delete svc.waiting;
    for (const [name, w] of Object.entries(summary.waiting)) (s.services[name] ??= {}).waiting = w;
  });
  return summary;
}

/** Git says what runs: rollbacks are written back as revert commits. */
async function writeBack(pass: Pass, a: Extract<Assessment, { kind: 'planned' }>): Promise<RevertOutcome[]> {
  const { deps } = pass;
  if (!deps.revert) return [];
  const desired = a.load.state;
  const hashes = Object.fromEntries(Object.values(desired.services).map((d) => [d.name, d.hash]));
  // A revert an earlier agent queued names the failed spec by its plain hash: the same spec, keyed.
  pass.state.change((s) => {
    for (const [name, svc] of Object.entries(s.services)) {
      const d = desired.services[name];
      if (svc.revert && d?.legacyHash !== undefined && svc.revert.request.failedHash === d.legacyHash) svc.revert.request.failedHash = d.hash;
    }
  });
  const log = pass.log.child({ revision: desired.revision });
  return processReverts(pass.state, { ...deps.revert, env: await deps.env(), defaultStack: deps.defaultStack, roots: deps.roots, ...(deps.hashKey ? { hashKey: deps.hashKey } : {}), clock: deps.clock, log, failpoint: deps.failpoint }, hashes, log);
}

/** What is still pending after the pass: the conditions and `agent apply`'s exit code follow it. */
function planAfter(pass: Pass, a: Extract<Assessment, { kind: 'planned' }>, actual: ActualState): Plan {
  const { deps } = pass;
  // Versions held now, including those that failed in this very pass.
  const held = heldSpecs(pass.state.state, a.load.state, a.quarantined);
  // A container reloaded in this very pass still has the label of its creation.
  return planChanges({ desired: a.load.state, actual: recogniseReloads(actual, pass.state.applied), applied: pass.state.applied, held, prune: a.prune, now: deps.clock.now(), ...(pass.opts.ignoreWindows ? { ignoreWindows: pass.opts.ignoreWindows } : {}) });
}

function outcomeOf(pass: Pass, a: Extract<Assessment, { kind: 'planned' }>, summary: ExecuteSummary, after: Plan, reverts: RevertOutcome[]): Omit<ReconcileReport, 'transactions'> {
  const { plan, snapshot } = a;
  const desired = a.load.state;
  const failed = pass.transactions.filter((t) => t.result !== 'succeeded' && t.result !== 'interrupted');
  const interrupted = Object.values(summary.waiting).some((w) => w.reason === 'interrupted');
  const result: ReconcileResult = failed.length > 0 || interrupted ? 'failed' : plan.changes === 0 && pass.transactions.length === 0 ? 'no-op' : 'succeeded';
  const held = after.steps.filter((s) => s.held).map((s) => s.service);
  const message =
    failed.length > 0
      ? failed.map((t) => `${t.service}: ${t.reason ?? t.result}`).join('; ')
      : `${pass.transactions.length} transaction(s), ${after.changes} change(s) pending${held.length > 0 ? `, held: ${held.join(', ')}` : ''}`;
  const allGood = summary.outcomes.every((o) => o.record.result === 'succeeded') && Object.keys(summary.waiting).length === 0;
  // Applied in full: nothing failed, waited, or was kept back (held, paused, waiting for its window).
  if (allGood && plan.steps.every((st) => !st.held && !st.paused && !st.deferred)) {
    pass.state.change((s) => {
      s.lastAppliedRevision = desired.revision;
      if (snapshot.commit) s.lastAppliedCommit = snapshot.commit;
    });
  }
  const revertsPushed = reverts.filter((r) => r.status === 'pushed').length;
  return {
    result,
    message,
    revision: desired.revision,
    plan,
    pending: after,
    desired,
    ...(Object.keys(summary.waiting).length > 0 ? { waiting: summary.waiting } : {}),
    ...(reverts.length > 0 ? { reverts } : {}),
    ...(revertsPushed > 0 ? { revertsPushed } : {}),
    ...sourceTrouble(snapshot),
  };
}

/** The last step of every pass: the conditions and the pass's record, in one write. */
async function settle(pass: Pass, report: Omit<ReconcileReport, 'transactions'>): Promise<ReconcileReport> {
  const now = isoTime(pass.deps.clock);
  const blockedBy: Blocked | undefined = report.blocked ?? (report.sourceError ? { reason: 'SourceUnavailable', errorClass: 'transient', ...(report.sourceErrorCode ? { code: report.sourceErrorCode } : {}), message: `cannot fetch: ${report.sourceError}; running the last fetched commit ${report.revision?.slice(0, 12) ?? ''}` } : undefined);
  pass.state.change((s) => {
    s.lastReconcile = { startedAt: pass.startedAt, finishedAt: now, result: report.result, message: report.message, ...(report.revision ? { revision: report.revision } : {}), ...(blockedBy ? { blocked: blockedBy } : {}) };
    s.conditions = computeConditions({ state: s, ...(report.pending ? { pending: report.pending } : {}), ...(blockedBy ? { blocked: blockedBy } : {}), now });
  });
  await pass.state.checkpoint();
  return { ...report, transactions: pass.transactions };
}

async function reconciling(pass: Pass, message: string): Promise<void> {
  pass.state.change((s) => setReconciling(s, isoTime(pass.deps.clock), message));
  await pass.state.checkpoint();
}

function recorder(pass: Pass) {
  // Longest first, so that a value containing another is cut whole.
  return outcomeRecorder(pass.deps.state, pass.state, pass.log, (text) => redactText(text, [...pass.secrets].sort((a, b) => b.length - a.length)), { queueReverts: pass.deps.revert !== undefined, clock: pass.deps.clock });
}

function blocked(reason: BlockedReason, message: string, err: unknown): Blocked {
  const e = toAgentError(err, 'INTERNAL');
  return { reason, message, errorClass: e.errorClass, code: e.code };
}

function sourceTrouble(snapshot: SourceSnapshot): { sourceError?: string; sourceErrorCode?: ErrorCode } {
  return snapshot.fetchError ? { sourceError: snapshot.fetchError, ...(snapshot.fetchErrorCode ? { sourceErrorCode: snapshot.fetchErrorCode } : {}) } : {};
}

function recordSource(s: AgentState, deps: AssessDeps, snapshot: SourceSnapshot, now: string): void {
  const src: NonNullable<AgentState['source']> = { kind: deps.source.kind, location: deps.source.location, revision: snapshot.revision, lastLoadedAt: snapshot.fetchedAt ?? now };
  if (deps.source.branch) src.branch = deps.source.branch;
  if (deps.source.path !== undefined) src.path = deps.source.path;
  if (snapshot.commit) src.commit = snapshot.commit;
  if (snapshot.fetchError) {
    src.error = snapshot.fetchError;
    src.errorAt = now;
  }
  s.source = src;
}

export type { Env };
