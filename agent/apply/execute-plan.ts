import { serviceContainer } from '../observe/observe.js';
import type { Logger } from 'pino';
import { errorMessage, isAgentError } from '../core/errors.js';
import { LABELS } from '../core/labels.js';
import type { Plan, PlanStep } from '../model/plan.js';
import type { Waiting } from '../model/report.js';
import type { DockerPort } from '../ports/docker.js';
import type { ServiceLocks } from '../ports/state.js';
import { runTransaction, type RecordOutcome, type TransactionOutcome, type TransactionRequest } from './transaction.js';
import type { TxDeps } from './types.js';

export interface ExecuteDeps {
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
  /** Services not acted on this pass, and why: a dependency not ready, a busy service, a transaction interrupted. */
  waiting: Record<string, Waiting>;
  /** Networks removed (pruning). */
  networksRemoved: number;
}

/**
 * Runs the plan as it is: its waves one after the other, the steps of one wave in parallel up
 * to `concurrency`, each as its own transaction with the target the plan chose.
 */
export async function executePlan(deps: ExecuteDeps, plan: Plan): Promise<ExecuteSummary> {
  const summary: ExecuteSummary = { outcomes: [], waiting: {}, networksRemoved: 0 };
  for (const wave of waves(plan)) {
    await runPool(wave, deps.concurrency, async (step) => {
      if (deps.signal?.aborted) return;
      // Whatever happens to one step, the others of the wave run to their end: the pass never
      // returns while a transaction of it still runs.
      try {
        await runStep(deps, plan, step, summary);
      } catch (err) {
        summary.waiting[step.service] = { reason: 'interrupted', message: errorMessage(err) };
        deps.log.error({ service: step.service, code: isAgentError(err) ? err.code : 'INTERNAL', err: errorMessage(err) }, 'Transaction interrupted; it resumes from its journal');
      }
    });
  }
  summary.networksRemoved = await removeNetworks(deps, plan);
  return summary;
}

/** Networks no longer desired, when pruning: removed once no container uses them (the removals above included). */
async function removeNetworks(deps: ExecuteDeps, plan: Plan): Promise<number> {
  const doomed = new Set(plan.networks.filter((n) => n.action === 'remove').map((n) => n.name));
  if (doomed.size === 0 || deps.signal?.aborted) return 0;
  let removed = 0;
  for (const n of await deps.docker.listNetworks({ [LABELS.managed]: 'true', [LABELS.stack]: plan.stack })) {
    if (!doomed.has(n.name)) continue;
    if (n.containers.length > 0) {
      deps.log.info({ network: n.name, containers: n.containers.length }, 'Network still in use; removed at a later pass');
      continue;
    }
    await deps.docker.removeNetwork(n.name);
    removed++;
    deps.log.info({ network: n.name }, 'Network removed');
  }
  return removed;
}

async function runStep(deps: ExecuteDeps, plan: Plan, step: PlanStep, summary: ExecuteSummary): Promise<void> {
  const blocker = await dependencyBlocker(deps.docker, plan.stack, step);
  if (blocker) {
    summary.waiting[step.service] = { reason: 'dependency-not-ready', message: blocker };
    deps.log.warn({ service: step.service, reason: blocker }, 'Waiting for dependency');
    return;
  }
  const lock = await deps.locks.tryAcquire(step.service, `${step.action} transaction`);
  if (!lock.acquired) {
    summary.waiting[step.service] = { reason: 'busy', message: `busy: ${lock.holder.purpose} (pid ${lock.holder.pid}) since ${lock.holder.since}` };
    deps.log.info({ service: step.service, holder: lock.holder }, 'Service busy; leaving it for the next pass');
    return;
  }
  try {
    summary.outcomes.push(await runTransaction(deps.tx, requestOf(plan, step), deps.record, deps.txSignal));
  } finally {
    await lock.release();
  }
}

/** The steps that change something, grouped by the waves the plan gave them, in order. */
function waves(plan: Plan): PlanStep[][] {
  const byWave = new Map<number, PlanStep[]>();
  for (const s of plan.steps.filter((x) => x.action !== 'none')) byWave.set(s.wave, [...(byWave.get(s.wave) ?? []), s]);
  return [...byWave.entries()].sort(([a], [b]) => a - b).map(([, steps]) => steps);
}

function requestOf(plan: Plan, step: PlanStep): TransactionRequest {
  const kind = step.action === 'remove' ? 'remove' : step.from ? 'update' : 'create';
  // Held, paused or waiting for its window: the target is the last applied spec, a repair.
  const repair = step.action !== 'remove' && (step.held !== undefined || step.paused === true || step.deferred !== undefined);
  return { stack: plan.stack, service: step.service, kind, revision: step.to?.revision ?? plan.revision, ...(step.from ? { old: step.from } : {}), ...(step.action !== 'remove' && step.to ? { target: step.to } : {}), ...(repair ? { repair: true } : {}), ...(step.reload && !repair ? { reload: step.reload } : {}) };
}

/** Why a step cannot start yet: a dependency that is not running (or not healthy, or not completed, as required). */
async function dependencyBlocker(docker: DockerPort, stack: string, step: PlanStep): Promise<string | undefined> {
  for (const dep of step.to?.dependsOn ?? step.dependsOn) {
    const c = await serviceContainer(docker, stack, dep.service);
    if (!c && dep.required === false) continue;
    if (!c) return `waiting for ${dep.service} (not created)`;
    if (dep.condition === 'service_completed_successfully') {
      if (c.status !== 'exited' || c.exitCode !== 0) return `waiting for ${dep.service} to complete successfully (${c.status})`;
      continue;
    }
    if (c.status !== 'running') return `waiting for ${dep.service} (${c.status})`;
    // As Compose: a dependency that cannot become healthy (no health check) is never satisfied.
    if (dep.condition === 'service_healthy' && !c.hasHealthcheck) return `waiting for ${dep.service} to be healthy, but it has no health check (HEALTHCHECK in its image or \`healthcheck:\`): give it one, or use condition: service_started`;
    if (dep.condition === 'service_healthy' && c.health !== 'healthy') return `waiting for ${dep.service} to be healthy (${c.health})`;
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
