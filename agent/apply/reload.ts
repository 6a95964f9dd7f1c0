/**
 * A reload in place: a service with `x-agent.reload` whose update changes the repository
 * folders it binds and nothing else keeps its container. The live folders get the new copy's
 * files, the reload command runs in the container (nginx re-reads its configuration with no
 * connection dropped), and the health gate judges the result; on failure the previous files
 * go back and the command runs again. Each phase is idempotent: a crash resumes it.
 */
import { AgentError } from '../core/errors.js';
import type { Journal, TxPhase } from '../model/journal.js';
import { noProjectFiles } from '../ports/project-files.js';
import { mustNew, newContainerId } from './tx-journal.js';
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
  for (const m of j.reload?.mounts ?? []) await (deps.files ?? noProjectFiles).syncLive(m.path, m.from);
  return 'rollback-reload';
}

export async function rollbackReload(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<TxPhase> {
  try {
    await runReload(deps, j, signal);
  } catch (err) {
    if (err instanceof AgentError && err.code !== 'RELOAD_FAILED') throw err;
    // The previous files are back; the service may still run on what it read before the failed reload.
    j.rollbackFailure = `the reload with the previous files failed too: ${err instanceof Error ? err.message : String(err)}`;
  }
  return 'rollback-check-old';
}

async function runReload(deps: TxDeps, j: Journal, signal?: AbortSignal): Promise<void> {
  const options = mustNew(j).agent.reload;
  if (!options) throw new AgentError('STATE_CORRUPT', `transaction ${j.txId} reloads ${j.service}, which has no reload command`);
  const r = await deps.docker.exec(newContainerId(j), options.command, { timeoutMs: options.timeoutMs, ...(signal ? { signal } : {}) });
  if (r.exitCode !== 0) {
    throw new AgentError('RELOAD_FAILED', `${options.command.join(' ')} exited ${r.exitCode}: ${r.output.trim().slice(-500)}`, { data: { exitCode: r.exitCode } });
  }
}
