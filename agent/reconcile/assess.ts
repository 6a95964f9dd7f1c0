import type { DrillResult } from '../model/backup.js';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { recogniseReloads, reloadOf } from './reload-plan.js';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { LABELS } from '../core/labels.js';
import { hashSpec, loadDesiredState, snapshotInput, type LoadResult } from '../desired/load.js';
import type { ProjectRoots } from '../desired/project-files.js';
import type { Env } from '../desired/interpolate.js';
import type { ActualState } from '../model/actual.js';
import type { AgentState, QuarantineEntry } from '../model/agent-state.js';
import type { DesiredState } from '../model/desired.js';
import type { Plan } from '../model/plan.js';
import type { AppliedRecord, HeldRecord } from '../model/records.js';
import type { SourceSnapshot } from '../model/source.js';
import { observeStack } from '../observe/observe.js';
import { planChanges } from '../plan/plan.js';
import type { DockerReader } from '../ports/docker.js';
import type { DesiredSource } from '../ports/source.js';
import { imageName, parseQuarantineRules, quarantines } from '../renovate/quarantine.js';
import type { OperatorPolicy } from '../policy/policy.js';

/** What reading, validating and planning need: read-only, so `agent plan` and `agent status` use it too. */
export interface AssessDeps {
  clock: Clock;
  source: DesiredSource;
  docker: DockerReader;
  /** Variables for `${VAR}`: read for each pass, so a rotated secret applies without a restart. */
  env: () => Promise<Env>;
  defaultStack: string;
  /** Where the repository's files are copied and the stack's data directories made. */
  roots: ProjectRoots;
  /** The operator's policy: a desired state that breaks it is refused, whoever committed it. */
  policy: OperatorPolicy | undefined;
  /** The host's key for spec hashes (none: plain SHA-256, as an earlier agent wrote them). */
  hashKey?: Buffer;
  /** The Compose files of the project, in order (`-f`). */
  composeFiles?: readonly string[];
  /** Active Compose profiles. */
  profiles?: readonly string[];
  /** Overrides the desired state's `x-agent.prune` when set. */
  prune?: boolean;
  log: Logger;
  /** The last restore drill of each service: an update of one whose drill failed warns in the plan. */
  drills?: () => Promise<Record<string, DrillResult> | undefined>;
  /**
   * The last desired state loaded, by what it was loaded from: a pass over an unchanged source
   * (most passes of `agent run`) skips parsing, validating and normalising it again.
   */
  loadCache?: LoadCache;
}

export interface LoadCache {
  key?: string;
  result?: LoadResult;
}

export interface AssessOptions {
  signal?: AbortSignal;
  /** Services whose maintenance window is ignored (`agent apply --now`); `'*'` for all. */
  ignoreWindows?: ReadonlySet<string>;
}

export type Assessment =
  | { kind: 'refused'; snapshot: SourceSnapshot; reason: string }
  | { kind: 'invalid'; snapshot: SourceSnapshot; load: Extract<LoadResult, { ok: false }> }
  | { kind: 'planned'; snapshot: SourceSnapshot; load: Extract<LoadResult, { ok: true }>; actual: ActualState; plan: Plan; prune: boolean; quarantined: QuarantineEntry[]; held: Record<string, HeldRecord> };

/**
 * Read the source, validate it, observe the engine and plan: everything `agent plan`,
 * `agent apply --dry-run` and `agent status` need, changing nothing.
 */
export async function assess(deps: AssessDeps, applied: Readonly<Record<string, AppliedRecord>>, state: AgentState, opts: AssessOptions = {}): Promise<Assessment> {
  const snapshot = await deps.source.read(opts.signal);
  if (snapshot.signatureRefused) return { kind: 'refused', snapshot, reason: snapshot.signatureRefused };
  const load = loadCached(deps, snapshot, await deps.env());
  if (!load.ok) return { kind: 'invalid', snapshot, load };
  const keyed = keyedApplied(applied, deps.hashKey);
  const actual = recogniseReloads(recogniseLegacyHashes(await observeStack(deps.docker, load.state.stack), load.state, applied, deps.hashKey), keyed);
  const prune = deps.prune ?? load.prune;
  const quarantined = quarantinedServices(load.state, snapshot);
  const held = heldSpecs(state, load.state, quarantined);
  const plan = planChanges({ desired: load.state, actual, applied: keyed, held, prune, now: deps.clock.now(), ...(opts.ignoreWindows ? { ignoreWindows: opts.ignoreWindows } : {}) });
  const drills = (await deps.drills?.().catch(() => undefined)) ?? {};
  for (const step of plan.steps) {
    // The update's order; stop-first says how long the last update kept the service down.
    const last = state.services[step.service]?.lastTransaction;
    const startFirst = load.state.services[step.service]?.agent.startFirst;
    const reload = reloadOf(step, actual, keyed[step.service], deps.roots.files, existsSync);
    if (reload) {
      step.reload = reload;
      step.reasons.push(`reload in place: only the repository folders bound at ${reload.map((m) => m.target).join(', ')} changed; the container is kept and runs ${step.to?.agent.reload?.command.join(' ')}, then its health gate (the previous files again on failure)`);
    } else if (step.action === 'update' && step.from && startFirst) step.reasons.push(`start-first: the new container starts beside the old one and takes the service's aliases once healthy; both answer for ${(startFirst.drainMs / 1000).toFixed(1)} s, then the old one stops`);
    else if (step.action === 'update' && step.from && last?.downtimeMs !== undefined) step.reasons.push(`stop-first: the old container stops before the new one starts; the last update (${last.finishedAt.slice(0, 16)}Z) kept ${step.service} down ${(last.downtimeMs / 1000).toFixed(1)} s`);
    const d = drills[step.service];
    if (d && !d.ok && step.from && step.action === 'update') step.reasons.push(`warning: the last restore drill (${d.at.slice(0, 16)}Z, backup ${d.backup ?? 'none'}) FAILED: ${d.error ?? 'see agent status'}; the backup taken before this update may not restore either`);
  }
  return { kind: 'planned', snapshot, load, actual, plan, prune, quarantined, held };
}

function loadCached(deps: AssessDeps, snapshot: SourceSnapshot, env: Env): LoadResult {
  const input = snapshotInput(snapshot, { env, defaultStack: deps.defaultStack, roots: deps.roots, policy: deps.policy, ...(deps.hashKey ? { hashKey: deps.hashKey } : {}), rootLabel: deps.source.location, ...(deps.profiles ? { profiles: deps.profiles } : {}), ...(deps.composeFiles ? { composeFiles: deps.composeFiles } : {}) });
  if (!deps.loadCache) return loadDesiredState(input);
  // The files themselves are in the key (not only the revision): a cache can never be stale.
  const key = createHash('sha256').update(JSON.stringify([input.files, input.revision, Object.entries(input.env).sort(), input.defaultStack, input.rootLabel, input.refusedFiles ?? [], input.dotEnv ?? null, input.profiles ?? [], input.tree ?? null, input.roots, input.composeFiles ?? [], input.policy ?? null, input.hashKey ? createHash('sha256').update(input.hashKey).digest('hex') : null])).digest('hex');
  if (deps.loadCache.key === key && deps.loadCache.result) return deps.loadCache.result;
  const result = loadDesiredState(input);
  Object.assign(deps.loadCache, { key, result });
  return result;
}

/**
 * Containers an earlier agent labelled with the plain SHA-256 of their spec: seen as labelled
 * with the keyed hash when the plain one matches, so an upgrade recreates nothing. Their labels
 * change when they are next recreated.
 */
export function recogniseLegacyHashes(actual: ActualState, desired: DesiredState, applied: Readonly<Record<string, AppliedRecord>> = {}, key?: Buffer): ActualState {
  const services = { ...actual.services };
  for (const [name, o] of Object.entries(actual.services)) {
    const d = desired.services[name];
    const label = o.current?.labels[LABELS.specHash];
    if (!o.current || label === undefined || label.startsWith('hmac-')) continue;
    // the desired spec's, or (held, paused, waiting for a window) the last applied one's
    const a = applied[name];
    const keyed = d?.legacyHash !== undefined && label === d.legacyHash ? d.hash : key && a && label === hashSpec(a.spec) ? hashSpec(a.spec, key) : undefined;
    if (keyed) services[name] = { ...o, current: { ...o.current, labels: { ...o.current.labels, [LABELS.specHash]: keyed } } };
  }
  return { ...actual, services };
}

/** Records of what was applied, with a plain hash, as keyed ones: the record holds the spec. */
function keyedApplied(applied: Readonly<Record<string, AppliedRecord>>, key: Buffer | undefined): Readonly<Record<string, AppliedRecord>> {
  if (!key) return applied;
  const out: Record<string, AppliedRecord> = {};
  for (const [name, r] of Object.entries(applied)) out[name] = r.hash.startsWith('hmac-') || r.hash !== hashSpec(r.spec) ? r : { ...r, hash: hashSpec(r.spec, key) };
  return out;
}

/** The agent's quarantine rules, each with the service using the image and whether it asks for that version. */
export function quarantinedServices(desired: DesiredState, snapshot: SourceSnapshot): QuarantineEntry[] {
  const out: QuarantineEntry[] = [];
  for (const rule of parseQuarantineRules(snapshot.renovateConfig?.content)) {
    // the image's users, and any service pinning the failed build's digest under another name
    const users = Object.values(desired.services).filter((s) => imageName(s.spec.image) === rule.image || quarantines(rule, s.spec.image));
    if (users.length === 0) out.push({ image: rule.image, version: rule.version, description: rule.description, blocking: false });
    for (const s of users) out.push({ service: s.name, image: rule.image, version: rule.version, description: rule.description, blocking: quarantines(rule, s.spec.image) });
  }
  return out;
}

/**
 * Specs not to apply: those that failed (until the desired state changes) and quarantined
 * versions (until a person removes the rule).
 */
export function heldSpecs(state: AgentState, desired?: DesiredState, quarantined: QuarantineEntry[] = []): Record<string, HeldRecord> {
  const out: Record<string, HeldRecord> = {};
  for (const [name, s] of Object.entries(state.services)) {
    if (!s.held) continue;
    // held by an earlier agent under the plain hash: the same spec, under its keyed hash
    const d = desired?.services[name];
    out[name] = d?.legacyHash !== undefined && s.held.hash === d.legacyHash ? { ...s.held, hash: d.hash } : s.held;
  }
  for (const q of quarantined.filter((x) => x.blocking && x.service)) {
    const d = desired?.services[q.service as string];
    if (d && out[d.name]?.hash !== d.hash) out[d.name] = { kind: 'quarantined', hash: d.hash, image: d.spec.image, revision: desired.revision, reason: `${q.version} is quarantined in renovate.json: ${q.description}`, at: '' };
  }
  return out;
}
