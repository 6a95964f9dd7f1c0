/**
 * The phases of a start-first update after the new container passed its health gate beside
 * the old one (which kept the service's aliases and served all along):
 *  - `switch`: the new container takes the service's aliases on each network; both now answer;
 *  - `drain`: both answer for `x-agent.drain`, so that clients caching DNS answers (nginx's
 *    `resolver ... valid=`) learn the new address before the old one goes. The new container
 *    is watched meanwhile (its health gate again, the drain as stabilisation window): the
 *    switch reconnected it to its networks, cutting what it had opened on them, and a failure
 *    here still rolls back with the old one serving under the aliases;
 *  - `retire-old`: the old container's restart policy is disarmed and it is stopped with its
 *    stop_grace_period, still on its networks: it finishes the requests it holds while new
 *    connections to it are refused (and retried on the other address by a proxy); once it
 *    exits, the engine drops it from the networks' DNS.
 * Each is idempotent; a crash resumes it (the drain only for what is left of it).
 */
import { isoTime } from '../core/clock.js';
import { AgentError } from '../core/errors.js';
import { asContainerId } from '../core/ids.js';
import type { Journal, TxPhase } from '../model/journal.js';
import { mustNew, mustOld, newContainerId } from './tx-journal.js';
import type { TxDeps } from './types.js';

export async function switchAliases(deps: TxDeps, j: Journal): Promise<TxPhase> {
  const id = newContainerId(j);
  for (const a of mustNew(j).spec.networks ?? []) await deps.docker.setNetworkAliases(id, a);
  return 'drain';
}

export async function drain(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  const target = mustNew(j);
  const drainMs = target.agent.startFirst?.drainMs ?? 0;
  const entered = [...j.trail].reverse().find((t) => t.phase === 'drain');
  const left = Math.max(0, Math.min(drainMs, entered ? Date.parse(entered.at) + drainMs - deps.clock.now() : drainMs));
  const verdict = await deps.gate(newContainerId(j), { ...target.agent.health, stabilizationMs: left }, signal);
  if (signal?.aborted) throw new AgentError('ABORTED', 'drain interrupted by shutdown; it resumes on restart');
  if (verdict.ok) return 'retire-old';
  j.failure = { code: 'HEALTH_CHECK_FAILED', errorClass: 'terminal', message: `after the switch: ${verdict.reason}`, gate: verdict.failure, phase: 'drain', at: isoTime(deps.clock) };
  deps.log.warn({ service: j.service, tx: j.txId, failure: verdict.failure.kind }, 'The new container failed while both versions answered; rolling back');
  return 'rollback-remove-new';
}

export async function retireOld(deps: TxDeps, j: Journal): Promise<TxPhase> {
  const old = mustOld(j);
  const c = await deps.docker.inspectContainer(old.containerId);
  if (c) {
    if (c.restartPolicy !== 'no') await deps.docker.setRestartPolicy(asContainerId(c.id), 'no');
    await deps.docker.stopContainer(asContainerId(c.id), old.stopTimeoutMs);
  }
  return 'remove-old';
}
