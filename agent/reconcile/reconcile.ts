import type { ReconcileReport } from '../model/report.js';
import type { Logger } from 'pino';
import { isoTime } from '../core/clock.js';
import { AgentError, errorMessage, isAgentError } from '../core/errors.js';
import type { DesiredState } from '../model/desired.js';
import type { ValidationIssue } from '../model/issues.js';
import { observeStack } from '../observe/observe.js';
import { type ActualState } from '../model/actual.js';
import { planChanges } from '../plan/plan.js';
import { resumeTransaction, type TransactionOutcome } from '../apply/transaction.js';
import type { TxDeps } from '../apply/types.js';
import type { Failpoint } from '../core/failpoints.js';
import type { TxBackup } from '../ports/tx-backup.js';
import type { BackupPolicy } from '../model/desired.js';
import { DEFAULT_RETENTION } from '../desired/normalize-backup.js';
import type { RevertDeps } from '../revert/revert.js';
import { redactText } from '../source/git/credentials.js';
import type { SourceSnapshot } from '../model/source.js';
import type { AgentState } from '../model/agent-state.js';
import type { ReconcileResult } from '../model/report.js';
import type { TransactionRecord } from '../model/records.js';
import type { StateStore } from '../state/store.js';
import { computeConditions, setReconciling, type ConditionInputs } from './conditions.js';
import { executePlan } from './execute.js';
import { assess, type PlanContext } from './inspect-desired.js';
import { StateRecorder, recordOutcomes } from './recorder.js';
import { processReverts, queueReverts } from './reverts.js';
import { type RevertOutcome } from '../model/revert.js';

export interface ReconcileContext extends PlanContext {
  store: StateStore;
  concurrency: number;
  /** The backup steps of transactions, with the stack's retention policy. */
  backupFor: (policy: BackupPolicy) => TxBackup;
  failpoint: Failpoint;
  gate: TxDeps['gate'];
  newTxId: () => string;
  /** Values never to write anywhere (the env file's): redacted from container output. */
  secrets: string[];
  /** Git sources: how to write a rollback back to the repository. Absent: no revert commits. */
  revert?: Omit<RevertDeps, 'env' | 'defaultStack' | 'clock' | 'log' | 'failpoint'>;
}

/**
 * One reconcile: finish interrupted transactions, read and validate the desired state, observe,
 * plan, apply each change as a transaction, write rollbacks back to Git, and record conditions.
 * Invalid desired state changes nothing that runs. The caller holds the state directory lock.
 */
export async function reconcileOnce(ctx: ReconcileContext, opts: { signal?: AbortSignal; txSignal?: AbortSignal } = {}): Promise<ReconcileReport> {
  const startedAt = isoTime(ctx.clock);
  const recorder = new StateRecorder(ctx.store, await ctx.store.load());
  const log = ctx.log;
  const secrets = new Set(ctx.secrets);
  const record = recordOutcomes(ctx.store, recorder, log, (text) => redactText(text, [...secrets]));
  const tx: TxDeps = { docker: ctx.docker, journals: ctx.store.journals, clock: ctx.clock, log, backup: ctx.backupFor({ retention: { ...DEFAULT_RETENTION } }), failpoint: ctx.failpoint, gate: ctx.gate, newTxId: ctx.newTxId };
  const transactions: TransactionRecord[] = [];

  const finish = async (report: Omit<ReconcileReport, 'transactions'>, extra: Omit<ConditionInputs, 'state' | 'now'> = {}): Promise<ReconcileReport> => {
    await recorder.update((s) => {
      s.lastReconcile = { startedAt, finishedAt: isoTime(ctx.clock), result: report.result, message: report.message, ...(report.revision ? { revision: report.revision } : {}) };
      s.conditions = computeConditions({ state: s, ...extra, now: isoTime(ctx.clock) });
    });
    return { ...report, transactions };
  };
  const blocked = (result: ReconcileResult, message: string, errorClass: ReconcileReport['errorClass'], reason: 'DockerUnavailable' | 'SourceUnavailable' | 'InternalError') =>
    finish({ result, message, ...(errorClass ? { errorClass } : {}) }, { blocked: { reason, message } });

  await recorder.update((s) => setReconciling(s, startedAt, 'reconciling'));
  try {
    await ctx.docker.ping(opts.signal);
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'Docker engine unavailable');
    return blocked('error', `Docker engine unavailable: ${errorMessage(err)}`, 'transient', 'DockerUnavailable');
  }

  // 1. Finish what an earlier run left half-done, before looking at anything else.
  const resumed: TransactionOutcome[] = [];
  for (const journal of await ctx.store.journals.list()) {
    try {
      const outcome = await resumeTransaction(tx, journal, record, opts.txSignal);
      resumed.push(outcome);
      transactions.push(outcome.record);
    } catch (err) {
      log.error({ service: journal.service, tx: journal.txId, err: errorMessage(err) }, 'Could not resume transaction; will retry');
      return blocked('error', `transaction ${journal.txId} of ${journal.service} could not be resumed: ${errorMessage(err)}`, 'transient', 'DockerUnavailable');
    }
  }
  // A rollback finished after a restart is written back like any other: queued now, as this pass may end early.
  if (ctx.revert && resumed.length > 0) await queueReverts(recorder, resumed, await ctx.store.loadApplied(), ctx.clock);

  // 2. Desired state, actual state, plan.
  const applied = await ctx.store.loadApplied();
  let assessment;
  try {
    assessment = await assess(ctx, applied, recorder.state, opts.signal);
  } catch (err) {
    const message = errorMessage(err);
    await recorder.update((s) => {
      s.source = { ...(s.source ?? { kind: ctx.source.kind, location: ctx.source.location }), error: message, errorAt: isoTime(ctx.clock) };
    });
    log.error({ err: message }, 'Could not read the desired state');
    const reason = isAgentError(err, 'DOCKER_UNAVAILABLE') ? 'DockerUnavailable' : isAgentError(err, 'SOURCE_UNAVAILABLE') ? 'SourceUnavailable' : 'InternalError';
    return blocked('error', message, isAgentError(err) ? err.errorClass : 'terminal', reason);
  }
  const { snapshot } = assessment;
  await recorder.update((s) => recordSource(s, ctx, snapshot, isoTime(ctx.clock)));
  if (snapshot.fetchError) log.warn({ err: snapshot.fetchError, revision: snapshot.revision }, 'Fetch failed; using the last fetched commit');
  const sourceTrouble = snapshot.fetchError ? { reason: 'SourceUnavailable' as const, message: `cannot fetch: ${snapshot.fetchError}; running the last fetched commit ${snapshot.revision.slice(0, 12)}` } : undefined;

  if (assessment.kind === 'refused' || assessment.kind === 'invalid') {
    const issues: ValidationIssue[] =
      assessment.kind === 'refused' ? [{ file: `commit ${snapshot.revision.slice(0, 12)}`, line: 1, column: 1, pointer: '', message: `signature refused: ${assessment.reason}` }] : assessment.load.issues;
    await recorder.update((s) => {
      s.invalid = { revision: snapshot.revision, at: isoTime(ctx.clock), issues, kind: assessment.kind === 'refused' ? 'signature' : 'validation' };
    });
    log.error({ revision: snapshot.revision, errors: issues.filter((i) => i.severity !== 'warning').length, kind: assessment.kind }, 'Desired state refused; nothing applied');
    return finish({ result: 'invalid', message: `desired state ${snapshot.revision} ${assessment.kind === 'refused' ? 'has a refused signature' : 'is invalid'}`, revision: snapshot.revision, issues }, sourceTrouble ? { blocked: sourceTrouble } : {});
  }

  const { load, actual, plan, quarantined } = assessment;
  const desired = load.state;
  for (const s of load.secrets) secrets.add(s);
  await recorder.update((s) => {
    delete s.invalid;
    s.stack = desired.stack;
    s.quarantined = quarantined;
    s.desired = { revision: desired.revision, loadedAt: isoTime(ctx.clock), services: Object.fromEntries(Object.values(desired.services).map((d) => [d.name, { image: d.spec.image, hash: d.hash, policy: d.agent.policy }])) };
    forgetStaleFailures(s, desired);
  });
  const tidied = await tidyLeftovers(ctx, actual, log);

  // 3. Apply.
  const rlog = log.child({ revision: desired.revision });
  const summary = await executePlan({ docker: ctx.docker, locks: ctx.store.locks, tx: { ...tx, log: rlog, backup: ctx.backupFor(desired.backups) }, record, log: rlog, concurrency: ctx.concurrency, signal: opts.signal, txSignal: opts.txSignal }, plan, desired, actual, applied);
  transactions.push(...summary.outcomes.map((o) => o.record));
  await recorder.update((s) => {
    for (const name of Object.keys(s.services)) delete (s.services[name] as { waiting?: string }).waiting;
    for (const [name, why] of Object.entries({ ...summary.waiting, ...summary.interrupted })) (s.services[name] ??= {}).waiting = why;
    const allGood = summary.outcomes.every((o) => o.record.result === 'succeeded') && Object.keys(summary.waiting).length === 0 && Object.keys(summary.interrupted).length === 0;
    if (allGood && plan.steps.every((st) => !st.held)) {
      s.lastAppliedRevision = desired.revision;
      if (snapshot.commit) s.lastAppliedCommit = snapshot.commit;
    }
  });

  // 4. Git says what runs: rollbacks are written back as revert commits.
  let reverts: RevertOutcome[] = [];
  if (ctx.revert) {
    await queueReverts(recorder, summary.outcomes, applied, ctx.clock);
    const hashes = Object.fromEntries(Object.values(desired.services).map((d) => [d.name, d.hash]));
    reverts = await processReverts(recorder, { ...ctx.revert, env: ctx.env, defaultStack: ctx.defaultStack, clock: ctx.clock, log: rlog, failpoint: ctx.failpoint }, hashes, rlog);
  }

  // 5. What is still pending after this pass, for the conditions.
  // Nothing touched (most passes): what was observed still holds, no need to ask the engine again.
  const touched = tidied > 0 || summary.outcomes.length > 0 || Object.keys(summary.interrupted).length > 0;
  const after = planChanges({ desired, actual: touched ? await observeStack(ctx.docker, desired.stack) : actual, applied: await ctx.store.loadApplied(), failed: assessment.held, prune: assessment.prune, now: ctx.clock.now(), ...(ctx.ignoreWindows ? { ignoreWindows: ctx.ignoreWindows } : {}) });
  const failed = transactions.filter((t) => t.result !== 'succeeded' && t.result !== 'interrupted');
  const result: ReconcileResult = failed.length > 0 || Object.keys(summary.interrupted).length > 0 ? 'failed' : plan.changes === 0 && transactions.length === 0 ? 'no-op' : 'succeeded';
  const held = after.steps.filter((s) => s.held).map((s) => s.service);
  const message =
    failed.length > 0
      ? failed.map((t) => `${t.service}: ${t.reason ?? t.result}`).join('; ')
      : `${transactions.length} transaction(s), ${after.changes} change(s) pending${held.length > 0 ? `, held: ${held.join(', ')}` : ''}`;
  const revertsPushed = reverts.filter((r) => r.status === 'pushed').length;
  const report = { result, message, revision: desired.revision, plan, desired, ...(reverts.length > 0 ? { reverts } : {}), ...(revertsPushed > 0 ? { revertsPushed } : {}), ...(snapshot.fetchError ? { sourceError: snapshot.fetchError, errorClass: 'transient' as const } : {}) };
  return finish(report, sourceTrouble ? { pending: after, blocked: sourceTrouble } : { pending: after });
}

function recordSource(s: AgentState, ctx: ReconcileContext, snapshot: SourceSnapshot, now: string): void {
  const src: NonNullable<AgentState['source']> = { kind: ctx.source.kind, location: ctx.source.location, revision: snapshot.revision, lastLoadedAt: snapshot.fetchedAt ?? now };
  if (ctx.source.branch) src.branch = ctx.source.branch;
  if (ctx.source.path !== undefined) src.path = ctx.source.path;
  if (snapshot.commit) src.commit = snapshot.commit;
  if (snapshot.fetchError) {
    src.error = snapshot.fetchError;
    src.errorAt = now;
  }
  s.source = src;
}

/** A held spec is forgotten once the desired state asks for something else. */
function forgetStaleFailures(s: AgentState, desired: DesiredState): void {
  for (const [name, svc] of Object.entries(s.services)) {
    if (svc.failed && desired.services[name]?.hash !== svc.failed.hash) delete svc.failed;
  }
}

/**
 * Containers of a service other than its live one, with no transaction journaled for them,
 * are leftovers of a transaction that finished without removing them: remove them so that
 * two copies never run.
 */
/** Removes containers of a service left by no transaction in flight; returns how many. */
async function tidyLeftovers(ctx: ReconcileContext, actual: ActualState, log: Logger): Promise<number> {
  const journaled = new Set((await ctx.store.journals.list()).map((j) => j.service));
  let removed = 0;
  for (const svc of Object.values(actual.services)) {
    if (journaled.has(svc.name)) continue;
    for (const c of svc.others) {
      log.warn({ service: svc.name, container: c.name }, 'Removing leftover container');
      await ctx.docker.removeContainer(c.id).catch((err: unknown) => {
        throw new AgentError('DOCKER_UNAVAILABLE', `cannot remove leftover container ${c.name}: ${errorMessage(err)}`, { cause: err });
      });
      removed++;
    }
  }
  return removed;
}
