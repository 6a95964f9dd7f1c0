/**
 * A reload in place: a service with `x-agent.reload` whose update changes the repository
 * folders it binds and nothing else keeps its container. The live folders get the new copy's
 * files, the reload command runs in the container (nginx re-reads its configuration with no
 * connection dropped), and the health gate judges the result; on failure the previous files
 * go back and the command runs again. Each phase is idempotent: a crash resumes it.
 */
import { AgentError, toAgentError } from '../core/errors.js';
import type { Journal, TxPhase } from '../model/journal.js';
import { noProjectFiles } from '../ports/project-files.js';
import { mustNew, mustOld, newContainerId } from './tx-journal.js';
import type { TxDeps } from './types.js';

export async function swapFiles(deps: TxDeps, j: Journal): Promise<TxPhase> {
  for (const m of j.reload?.mounts ?? []) await (deps.files ?? noProjectFiles).syncLive(m.path, m.to);
  return 'reload';
}

export async function reload(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  await runReload(deps, j, signal);
  return 'health-gate';
}

export async function rollbackSwapFiles(deps: TxDeps, j: Journal): Promise<TxPhase> {
  for (const m of j.reload?.mounts ?? []) {
    try {
      await (deps.files ?? noProjectFiles).syncLive(m.path, m.from);
    } catch (err) {
      // A live folder that is gone got no new file either: nothing to put back there.
      if (err instanceof AgentError && err.data.missing === true) continue;
      throw err;
    }
  }
  return 'rollback-reload';
}

/**
 * The previous files are back: the command again, with the previous version's command. A
 * container that stopped meanwhile is started again (it reads the previous files). Only an
 * outage or a shutdown keeps the journal; anything else is a rollback failure, checked next.
 */
export async function rollbackReload(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  const id = newContainerId(j);
  try {
    const c = await deps.docker.inspectContainer(id);
    if (!c) {
      j.rollbackFailure = `the container ${mustOld(j).name} no longer exists`;
      return 'finish';
    }
    if (c.status !== 'running') await deps.docker.startContainer(id);
    else await runReload(deps, j, signal, mustOld(j).agent?.reload?.command);
  } catch (err) {
    const e = toAgentError(err, 'INTERNAL');
    if (e.errorClass === 'transient') throw e;
    // The service may still run on what it read before the failed reload.
    j.rollbackFailure = `the reload with the previous files failed too: ${e.message}`;
  }
  return 'rollback-check-old';
}

async function runReload(deps: TxDeps, j: Journal, signal?: AbortSignal, command?: string[]): Promise<void> {
  const options = mustNew(j).agent.reload;
  if (!options) throw new AgentError('STATE_CORRUPT', `transaction ${j.txId} reloads ${j.service}, which has no reload command`);
  const argv = command ?? options.command;
  const r = await deps.docker.exec(newContainerId(j), argv, { timeoutMs: options.timeoutMs, ...(signal ? { signal } : {}) });
  // Cut short by shutdown: says nothing about the files; the step runs again on restart.
  if (signal?.aborted) throw new AgentError('ABORTED', `${argv.join(' ')} interrupted by shutdown`);
  if (r.exitCode !== 0) {
    const why = r.exitCode === -1 ? `did not finish within ${options.timeoutMs / 1000} s` : `exited ${r.exitCode}`;
    throw new AgentError('RELOAD_FAILED', `${argv.join(' ')} ${why}: ${r.output.trim().slice(-500)}`, { data: { exitCode: r.exitCode } });
  }
}
