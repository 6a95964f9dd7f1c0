import type { Logger } from 'pino';
import { isoTime, type Clock } from '../core/clock.js';
import { AgentError, errorMessage, isAgentError } from '../core/errors.js';
import type { DesiredState } from '../desired/types.js';
import type { ActualState } from '../observe/observe.js';
import { resumeTransaction } from '../apply/transaction.js';
import type { BackupHook, Failpoint, TxDeps } from '../apply/types.js';
import type { Plan } from '../plan/types.js';
import type { ReconcileResult, TransactionRecord } from '../state/agent-state.js';
import type { StateStore } from '../state/store.js';
import type { ValidationIssue } from '../desired/issues.js';
import { computeConditions, setReconciling } from './conditions.js';
import { executePlan } from './execute.js';
import { assess, heldSpecs, type PlanContext } from './inspect-desired.js';
import { StateRecorder, recordOutcomes } from './recorder.js';
import { planChanges } from '../plan/plan.js';
import { observeStack } from '../observe/observe.js';

export interface ReconcileContext extends PlanContext {
  store: StateStore;
  clock: Clock;
  concurrency: number;
  backup: BackupHook;
  failpoint: Failpoint;
  gate: TxDeps['gate'];
  newTxId: () => string;
}

export interface ReconcileReport {
  result: ReconcileResult;
  message: string;
  revision?: string;
  plan?: Plan;
  transactions: TransactionRecord[];
  issues?: ValidationIssue[];
  /** The error class when the reconcile could not run: the loop backs off on transient ones. */
  errorClass?: 'terminal' | 'transient' | 'waiting';
}

/**
 * One reconcile: finish interrupted transactions, read and validate the desired state, observe,
 * plan, apply each change as a transaction, and record conditions. Invalid desired state
 * changes nothing that runs. The caller holds the state directory lock.
 */
export async function reconcileOnce(ctx: ReconcileContext, opts: { signal?: AbortSignal; txSignal?: AbortSignal } = {}): Promise<ReconcileReport> {
  const startedAt = isoTime(ctx.clock);
  const state = await ctx.store.load();
  const recorder = new StateRecorder(ctx.store, state);
  const log = ctx.log;
  const record = recordOutcomes(ctx.store, recorder, log);
  const tx: TxDeps = { docker: ctx.docker, journals: ctx.store.journals, clock: ctx.clock, log, backup: ctx.backup, failpoint: ctx.failpoint, gate: ctx.gate, newTxId: ctx.newTxId };
  const transactions: TransactionRecord[] = [];

  const finish = async (report: Omit<ReconcileReport, 'transactions'>, extra?: { pending?: Plan; blocked?: Parameters<typeof computeConditions>[0]['blocked'] }): Promise<ReconcileReport> => {
    await recorder.update((s) => {
      s.lastReconcile = { startedAt, finishedAt: isoTime(ctx.clock), result: report.result, message: report.message, ...(report.revision ? { revision: report.revision } : {}) };
      s.conditions = computeConditions({ state: s, pending: extra?.pending, blocked: extra?.blocked, now: isoTime(ctx.clock) });
    });
    return { ...report, transactions };
  };

  await recorder.update((s) => setReconciling(s, startedAt, 'reconciling'));
  try {
    await ctx.docker.ping(opts.signal);
  } catch (err) {
    const message = `Docker engine unavailable: ${errorMessage(err)}`;
    log.error({ err: errorMessage(err) }, 'Docker engine unavailable');
    return finish({ result: 'error', message, errorClass: 'transient' }, { blocked: { reason: 'DockerUnavailable', message } });
  }

  // 1. Finish what an earlier run left half-done, before looking at anything else.
  for (const journal of await ctx.store.journals.list()) {
    try {
      const outcome = await resumeTransaction(tx, journal, record, opts.txSignal);
      transactions.push(outcome.record);
    } catch (err) {
      log.error({ service: journal.service, tx: journal.txId, err: errorMessage(err) }, 'Could not resume transaction; will retry');
      return finish({ result: 'error', message: `transaction ${journal.txId} of ${journal.service} could not be resumed: ${errorMessage(err)}`, errorClass: 'transient' }, { blocked: { reason: 'DockerUnavailable', message: errorMessage(err) } });
    }
  }

  // 2. Desired state, actual state, plan.
  const applied = await ctx.store.loadApplied();
  let assessment;
  try {
    assessment = await assess(ctx, applied, state, opts.signal);
  } catch (err) {
    const message = errorMessage(err);
    const reason = isAgentError(err, 'SOURCE_UNAVAILABLE') ? 'SourceUnavailable' : isAgentError(err, 'DOCKER_UNAVAILABLE') ? 'DockerUnavailable' : 'InternalError';
    await recorder.update((s) => {
      s.source = { ...(s.source ?? { kind: ctx.source.kind, location: ctx.source.location }), error: message };
    });
    log.error({ err: message }, 'Could not read the desired state');
    return finish({ result: 'error', message, errorClass: isAgentError(err) ? err.errorClass : 'terminal' }, { blocked: { reason, message } });
  }
  const { snapshot } = assessment;
  await recorder.update((s) => {
    s.source = { kind: ctx.source.kind, location: ctx.source.location, revision: snapshot.revision, lastLoadedAt: isoTime(ctx.clock) };
  });
  if (assessment.kind === 'invalid') {
    const issues = assessment.load.issues;
    await recorder.update((s) => {
      s.invalid = { revision: snapshot.revision, at: isoTime(ctx.clock), issues };
    });
    log.error({ revision: snapshot.revision, errors: issues.filter((i) => i.severity !== 'warning').length }, 'Desired state is invalid; nothing applied');
    return finish({ result: 'invalid', message: `desired state ${snapshot.revision} is invalid`, revision: snapshot.revision, issues });
  }

  const { load, actual, plan } = assessment;
  const desired = load.state;
  await recorder.update((s) => {
    delete s.invalid;
    s.stack = desired.stack;
    s.desired = { revision: desired.revision, loadedAt: isoTime(ctx.clock), services: Object.fromEntries(Object.values(desired.services).map((d) => [d.name, { image: d.spec.image, hash: d.hash, policy: d.agent.policy }])) };
    forgetStaleFailures(s.services, desired);
  });
  await tidyLeftovers(ctx, actual, log);

  // 3. Apply.
  const rlog = log.child({ revision: desired.revision });
  const summary = await executePlan({ docker: ctx.docker, tx: { ...tx, log: rlog }, record, log: rlog, concurrency: ctx.concurrency, signal: opts.signal, txSignal: opts.txSignal }, plan, desired, actual, applied);
  transactions.push(...summary.outcomes.map((o) => o.record));
  await recorder.update((s) => {
    for (const name of Object.keys(s.services)) delete (s.services[name] as { waiting?: string }).waiting;
    for (const [name, why] of Object.entries({ ...summary.waiting, ...summary.interrupted })) (s.services[name] ??= {}).waiting = why;
    if (summary.outcomes.every((o) => o.record.result === 'succeeded') && Object.keys(summary.waiting).length === 0) s.lastAppliedRevision = desired.revision;
  });

  // 4. What is still pending after this pass, for the conditions.
  const after = planChanges({ desired, actual: await observeStack(ctx.docker, desired.stack), applied: await ctx.store.loadApplied(), failed: heldSpecs(state), prune: assessment.prune });
  const failed = transactions.filter((t) => t.result !== 'succeeded' && t.result !== 'interrupted');
  const result: ReconcileResult = failed.length > 0 || Object.keys(summary.interrupted).length > 0 ? 'failed' : plan.changes === 0 && transactions.length === 0 ? 'no-op' : 'succeeded';
  const held = after.steps.filter((s) => s.held).map((s) => s.service);
  const message =
    failed.length > 0
      ? failed.map((t) => `${t.service}: ${t.reason ?? t.result}`).join('; ')
      : `${transactions.length} transaction(s), ${after.changes} change(s) pending${held.length > 0 ? `, held after a failed update: ${held.join(', ')}` : ''}`;
  return finish({ result, message, revision: desired.revision, plan }, { pending: after });
}

/** A held spec is forgotten once the desired state asks for something else. */
function forgetStaleFailures(services: Record<string, { failed?: { hash: string } }>, desired: DesiredState): void {
  for (const [name, s] of Object.entries(services)) {
    if (s.failed && desired.services[name]?.hash !== s.failed.hash) delete s.failed;
  }
}

/**
 * Containers of a service other than its live one, with no transaction journaled for them,
 * are leftovers of a transaction that finished without removing them: remove them so that
 * two copies never run.
 */
async function tidyLeftovers(ctx: ReconcileContext, actual: ActualState, log: Logger): Promise<void> {
  const journaled = new Set((await ctx.store.journals.list()).map((j) => j.service));
  for (const svc of Object.values(actual.services)) {
    if (journaled.has(svc.name)) continue;
    for (const c of svc.others) {
      log.warn({ service: svc.name, container: c.name }, 'Removing leftover container');
      await ctx.docker.removeContainer(c.id).catch((err: unknown) => {
        throw new AgentError('DOCKER_UNAVAILABLE', `cannot remove leftover container ${c.name}: ${errorMessage(err)}`, { cause: err });
      });
    }
  }
}
