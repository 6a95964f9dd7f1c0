/**
 * The phases of a start-first update after the new container passed its health gate beside
 * the old one (which kept the service's aliases and served all along):
 *  - `switch`: the new container takes the service's aliases on each network; both now answer;
 *  - `drain`: both answer for `x-agent.drain`, so that clients caching DNS answers (nginx's
 *    `resolver ... valid=`) learn the new address before the old one goes;
 *  - `retire-old`: the old container's restart policy is disarmed and it is stopped with its
 *    stop_grace_period, still on its networks: it finishes the requests it holds while new
 *    connections to it are refused (and retried on the other address by a proxy); once it
 *    exits, the engine drops it from the networks' DNS.
 * Each is idempotent; a crash resumes it (the drain only for what is left of it).
 */
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
  const drainMs = mustNew(j).agent.startFirst?.drainMs ?? 0;
  const entered = [...j.trail].reverse().find((t) => t.phase === 'drain');
  const left = entered ? Date.parse(entered.at) + drainMs - deps.clock.now() : drainMs;
  if (left > 0) {
    await deps.clock.sleep(Math.min(left, drainMs), signal).catch(() => {
      throw new AgentError('ABORTED', 'drain interrupted by shutdown; it resumes on restart');
    });
  }
  return 'retire-old';
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
