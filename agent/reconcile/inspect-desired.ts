import type { Logger } from 'pino';
import { AgentError } from '../core/errors.js';
import { loadDesiredState, type LoadResult } from '../desired/load.js';
import type { Env } from '../desired/interpolate.js';
import type { DockerPort } from '../docker/port.js';
import { observeStack, type ActualState } from '../observe/observe.js';
import { planChanges } from '../plan/plan.js';
import type { AppliedRecord, FailedRecord, Plan } from '../plan/types.js';
import type { DesiredSource, SourceSnapshot } from '../source/source.js';
import type { AgentState } from '../state/agent-state.js';

export interface PlanContext {
  source: DesiredSource;
  docker: DockerPort;
  env: Env;
  defaultStack: string;
  /** Overrides the desired state's `x-agent.prune` when set. */
  prune?: boolean;
  log: Logger;
}

export type Assessment =
  | { kind: 'invalid'; snapshot: SourceSnapshot; load: Extract<LoadResult, { ok: false }> }
  | { kind: 'planned'; snapshot: SourceSnapshot; load: Extract<LoadResult, { ok: true }>; actual: ActualState; plan: Plan; prune: boolean };

/**
 * Read the source, validate it, observe the engine and plan: everything `agent plan`,
 * `agent apply --dry-run` and `agent status` need, changing nothing.
 */
export async function assess(ctx: PlanContext, applied: Readonly<Record<string, AppliedRecord>>, state: AgentState, signal?: AbortSignal): Promise<Assessment> {
  const snapshot = await ctx.source.read(signal);
  const load = loadDesiredState({ files: snapshot.files, revision: snapshot.revision, env: ctx.env, defaultStack: ctx.defaultStack, rootLabel: ctx.source.location });
  if (!load.ok) return { kind: 'invalid', snapshot, load };
  const actual = await observeStack(ctx.docker, load.state.stack);
  const prune = ctx.prune ?? load.prune;
  const plan = planChanges({ desired: load.state, actual, applied, failed: heldSpecs(state), prune });
  return { kind: 'planned', snapshot, load, actual, plan, prune };
}

export function heldSpecs(state: AgentState): Record<string, FailedRecord> {
  const out: Record<string, FailedRecord> = {};
  for (const [name, s] of Object.entries(state.services)) if (s.failed) out[name] = s.failed;
  return out;
}

export function assertNever(x: never): never {
  throw new AgentError('INTERNAL', `unexpected ${String(x)}`);
}
