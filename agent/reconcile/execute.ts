import type { Logger } from 'pino';
import { errorMessage, isAgentError } from '../core/errors.js';
import { containerName } from '../core/labels.js';
import type { DesiredState } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';
import type { ActualState } from '../model/actual.js';
import { dependencyWaves } from '../plan/order.js';
import type { Plan, PlanStep } from '../model/plan.js';
import type { AppliedRecord } from '../model/records.js';
import { runTransaction, type RecordOutcome, type TransactionOutcome } from '../apply/transaction.js';
import type { TxDeps } from '../apply/types.js';
import type { ServiceLocks } from '../state/service-lock.js';

export interface ExecuteContext {
  docker: DockerPort;
  /** Per-service locks shared with backups and restores run by other processes. */
  locks: ServiceLocks;
  tx: TxDeps;
  record: RecordOutcome;
  log: Logger;
  concurrency: number;
  /** Stop starting new transactions (graceful shutdown); running ones finish. */
  signal?: AbortSignal;
  /** Cut running transactions short; their journals resume at the next start. */
  txSignal?: AbortSignal;
}

export interface ExecuteSummary {
  outcomes: TransactionOutcome[];
  /** Services not acted on because a dependency was not ready. */
  waiting: Record<string, string>;
  /** Services whose transaction was interrupted by a transient error; the journal resumes it. */
  interrupted: Record<string, string>;
}

/**
 * Runs the plan's changes: dependency waves one after the other, the services of one wave in
 * parallel up to `concurrency`, each as its own transaction.
 */
export async function executePlan(ctx: ExecuteContext, plan: Plan, desired: DesiredState, actual: ActualState, applied: Readonly<Record<string, AppliedRecord>>): Promise<ExecuteSummary> {
  const summary: ExecuteSummary = { outcomes: [], waiting: {}, interrupted: {} };
  const byService = new Map(plan.steps.map((s) => [s.service, s]));
  const waves = dependencyWaves(Object.values(desired.services).map((s) => ({ name: s.name, dependsOn: s.dependsOn.map((d) => d.service) })));
  const removals = plan.steps.filter((s) => s.action === 'remove').map((s) => s.service);
  if (removals.length > 0) waves.push(removals);

  for (const wave of waves) {
    const steps = wave.map((n) => byService.get(n)).filter((s): s is PlanStep => s !== undefined && s.action !== 'none');
    await runPool(steps, ctx.concurrency, async (step) => {
      if (ctx.signal?.aborted) return;
      const blocker = await dependencyBlocker(ctx.docker, desired, step.service);
      if (blocker) {
        summary.waiting[step.service] = blocker;
        ctx.log.warn({ service: step.service, reason: blocker }, 'Waiting for dependency');
        return;
      }
      const lock = await ctx.locks.tryAcquire(step.service, `${step.action} transaction`);
      if (!lock.acquired) {
        summary.waiting[step.service] = `busy: ${lock.holder.purpose} (pid ${lock.holder.pid}) since ${lock.holder.since}`;
        ctx.log.info({ service: step.service, holder: lock.holder }, 'Service busy; leaving it for the next pass');
        return;
      }
      try {
        summary.outcomes.push(await runStep(ctx, step, desired, actual, applied));
      } catch (err) {
        summary.interrupted[step.service] = errorMessage(err);
        ctx.log.error({ service: step.service, code: isAgentError(err) ? err.code : 'INTERNAL', err: errorMessage(err) }, 'Transaction interrupted; it resumes from its journal');
      } finally {
        await lock.release();
      }
    });
  }
  return summary;
}

function runStep(ctx: ExecuteContext, step: PlanStep, desired: DesiredState, actual: ActualState, applied: Readonly<Record<string, AppliedRecord>>): Promise<TransactionOutcome> {
  const current = actual.services[step.service]?.current;
  const prior = applied[step.service];
  if (step.action === 'remove') {
    return runTransaction(ctx.tx, { stack: desired.stack, service: step.service, kind: 'remove', revision: desired.revision, old: current }, ctx.record, ctx.txSignal);
  }
  const d = desired.services[step.service];
  if (!d) throw new Error(`no desired service ${step.service}`);
  // While the desired spec is held or paused, the plan targets the last applied one (drift repair).
  const usePrior = !!prior && step.to?.hash === prior.hash && prior.hash !== d.hash;
  const target = usePrior && prior ? { hash: prior.hash, spec: prior.spec, agent: prior.agent, dependsOn: prior.dependsOn as typeof d.dependsOn } : { hash: d.hash, spec: d.spec, agent: d.agent, dependsOn: d.dependsOn };
  const externalVolumes = Object.values(desired.volumes).filter((v) => v.external).map((v) => v.name);
  return runTransaction(
    ctx.tx,
    {
      stack: desired.stack,
      service: step.service,
      kind: current ? 'update' : 'create',
      revision: usePrior && prior ? prior.revision : desired.revision,
      old: current,
      oldAgent: prior?.agent,
      target: { ...target, externalVolumes },
    },
    ctx.record,
    ctx.txSignal,
  );
}

/** Why a service cannot be touched yet: a dependency that is not running (or not healthy, when required). */
async function dependencyBlocker(docker: DockerPort, desired: DesiredState, service: string): Promise<string | undefined> {
  for (const dep of desired.services[service]?.dependsOn ?? []) {
    const c = await docker.inspectContainer(containerName(desired.stack, dep.service));
    if (!c) return `waiting for ${dep.service} (not created)`;
    if (dep.condition === 'service_completed_successfully') {
      if (c.status !== 'exited' || c.exitCode !== 0) return `waiting for ${dep.service} to complete successfully (${c.status})`;
      continue;
    }
    if (c.status !== 'running') return `waiting for ${dep.service} (${c.status})`;
    if (dep.condition === 'service_healthy' && c.hasHealthcheck && c.health !== 'healthy') return `waiting for ${dep.service} to be healthy (${c.health})`;
  }
  return undefined;
}

async function runPool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
