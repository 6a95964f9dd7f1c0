/**
 * How an update replaces a service's container: Compose's `deploy.update_config` and
 * `deploy.rollback_config`, and the agent's `x-agent.drain` and `x-agent.sharedVolumes` for a
 * start-first update. A service that cannot run twice side by side (a host port, a fixed
 * address, a volume it writes that is not declared shareable, another network mode) is refused
 * start-first here, at the key that makes it impossible: never switched to stop-first behind
 * the operator's back.
 */
import { parseDuration } from '../core/duration.js';
import type { AgentOptions, ContainerSpec } from '../model/desired.js';
import type { Report } from './normalize-ports-volumes.js';

type Raw = Record<string, unknown>;
type Path = (string | number)[];

export const DRAIN_DEFAULT_MS = 5000;
export const RELOAD_TIMEOUT_DEFAULT_MS = 30_000;

/** The settings of `deploy.update_config` / `rollback_config` that one container per service makes moot, when they say something else. */
function checkBatchSettings(cfg: Raw, path: Path, report: Report): void {
  if (cfg.delay !== undefined && parseDuration(cfg.delay as string) !== 0) {
    report([...path, 'delay'], 'not supported: delay waits between batches of replicas; the agent runs one container per service, so there is no second batch to wait for (leave it out)');
  }
  if (cfg.max_failure_ratio !== undefined && cfg.max_failure_ratio !== 0) {
    report([...path, 'max_failure_ratio'], 'not supported: max_failure_ratio tolerates failed replicas; with one container per service any failure is the whole update (leave it out)');
  }
}

/**
 * Reads the update and rollback settings into `agent` (and the stabilisation window of its
 * health gate); reports what the agent refuses. `declared` maps volume keys to engine names.
 */
export function normalizeUpdateSettings(raw: Raw, spec: ContainerSpec, agent: AgentOptions, declared: Record<string, string>, base: Path, report: Report): void {
  const deploy = (raw.deploy as Raw | undefined) ?? {};
  const xagent = (raw['x-agent'] as Raw | undefined) ?? {};
  const update = deploy.update_config as Raw | undefined;
  const rollback = deploy.rollback_config as Raw | undefined;
  const updatePath = [...base, 'deploy', 'update_config'];
  const rollbackPath = [...base, 'deploy', 'rollback_config'];

  if (update) {
    checkBatchSettings(update, updatePath, report);
    if (update.failure_action !== undefined && update.failure_action !== 'rollback') {
      report([...updatePath, 'failure_action'], `not supported: failure_action: ${String(update.failure_action)}: the agent rolls a failed update back to the previous container (and data), reverts the commit and holds the version; keeping a failed version running is not offered (leave it out, or say rollback)`);
    }
    if (update.monitor !== undefined) {
      const ms = parseDuration(update.monitor as string) ?? 0;
      const stabilization = (xagent.health as Raw | undefined)?.stabilization;
      if (stabilization !== undefined && parseDuration(stabilization as string) !== ms) report([...updatePath, 'monitor'], 'deploy.update_config.monitor and x-agent.health.stabilization say different things; keep one');
      agent.health = { ...agent.health, stabilizationMs: ms };
    }
  }
  if (rollback) {
    checkBatchSettings(rollback, rollbackPath, report);
    if (rollback.failure_action !== undefined && rollback.failure_action !== 'pause') {
      report([...rollbackPath, 'failure_action'], `not supported: failure_action: ${String(rollback.failure_action)}: when the previous version cannot be brought back healthy the agent stops there, records rollback-failed and notifies (pause); leave it out, or say pause`);
    }
    if (rollback.monitor !== undefined) agent.rollbackMonitorMs = parseDuration(rollback.monitor as string) ?? 0;
  }

  const reload = xagent.reload as Raw | undefined;
  if (reload) {
    if (!spec.volumes.some((m) => m.project?.kind === 'dir')) {
      report([...base, 'x-agent', 'reload'], 'reload applies a change of the repository folders bound into the container, and this service binds none: bind one (./nginx/conf.d:/etc/nginx/conf.d:ro), or leave reload out');
    } else {
      agent.reload = { command: (reload.command as unknown[]).map(String), timeoutMs: reload.timeout === undefined ? RELOAD_TIMEOUT_DEFAULT_MS : (parseDuration(reload.timeout as string) ?? RELOAD_TIMEOUT_DEFAULT_MS) };
    }
  }

  const startFirst = update?.order === 'start-first';
  if (rollback?.order === 'start-first' && !startFirst) {
    report([...rollbackPath, 'order'], 'rollback_config.order: start-first needs update_config.order: start-first: a stop-first update stops the old container before the new one starts, so its rollback can only start it again once the failed one is removed');
  }
  if (!startFirst) {
    if (xagent.drain !== undefined) report([...base, 'x-agent', 'drain'], 'drain is only read for a start-first update: set deploy.update_config.order: start-first, or leave it out');
    if (xagent.sharedVolumes !== undefined) report([...base, 'x-agent', 'sharedVolumes'], 'sharedVolumes is only read for a start-first update: set deploy.update_config.order: start-first, or leave it out');
    return;
  }
  const shared = (xagent.sharedVolumes as string[] | undefined) ?? [];
  if (checkStartFirst(spec, agent, declared, shared, base, report)) {
    agent.startFirst = { drainMs: xagent.drain === undefined ? DRAIN_DEFAULT_MS : (parseDuration(xagent.drain as string) ?? DRAIN_DEFAULT_MS) };
  }
}

/** Whether the service can run twice side by side; every reason it cannot is reported at its key. */
function checkStartFirst(spec: ContainerSpec, agent: AgentOptions, declared: Record<string, string>, shared: string[], base: Path, report: Report): boolean {
  const why = 'start-first runs the old and the new container side by side';
  let ok = true;
  const refuse = (path: Path, message: string) => {
    ok = false;
    report(path, `${message}; use order: stop-first (the default) for this service`);
  };
  if (spec.ports.length > 0) {
    const p = spec.ports[0]!;
    refuse([...base, 'ports'], `${why}, and a published host port (${p.hostIp ? `${p.hostIp}:` : ''}${p.hostPort}) can be bound by one of them only: put the service behind a proxy on a network instead`);
  }
  if (!spec.networks?.length) {
    refuse([...base, 'network_mode'], `${why}, switching the service's aliases on its networks; network_mode ${spec.networkMode} has no network aliases to switch`);
  }
  spec.networks?.forEach((a) => {
    if (a.ipv4Address || a.ipv6Address) refuse([...base, 'networks'], `${why}, and the fixed address ${a.ipv4Address ?? a.ipv6Address} on ${a.network} can be held by one of them only`);
  });
  const keyOf = new Map(Object.entries(declared).map(([key, engine]) => [engine, key]));
  spec.volumes.forEach((m) => {
    if (m.readOnly || m.project) return;
    const name = m.type === 'volume' ? (keyOf.get(m.source) ?? m.source) : m.target;
    if (shared.includes(name)) return;
    const what = m.type === 'volume' ? `the named volume "${name}"` : `the writable bind at ${m.target}`;
    refuse([...base, 'volumes'], `${why}, and both would write ${what} (a database's data directory must never be opened twice): mount it read-only, or list "${name}" under x-agent.sharedVolumes if the service is made to share it`);
  });
  shared.forEach((name, i) => {
    const known = spec.volumes.some((m) => (m.type === 'volume' ? keyOf.get(m.source) === name : m.target === name));
    if (!known) report([...base, 'x-agent', 'sharedVolumes', i], `"${name}" is neither a named volume (by its key) nor a bind target this service mounts`);
  });
  if (agent.health.probes.length > 0) {
    refuse([...base, 'x-agent', 'health', 'probes'], `${why}, and the agent's probes go to a fixed address, which reaches the old container while the new one is checked: give the service a healthcheck (it runs inside the new container)`);
  }
  if (agent.backup?.consistency === 'stop') refuse([...base, 'x-agent', 'backup'], `${why}, and a backup with consistency: stop stops the old one first`);
  if (agent.backup?.restoreOnRollback) refuse([...base, 'x-agent', 'backup', 'restoreOnRollback'], `${why}: the old one keeps writing while the new one is checked, so restoring the backup on rollback would lose those writes`);
  return ok;
}
