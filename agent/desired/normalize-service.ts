import { AGENT_LABEL_PREFIX, COMPOSE_LABEL_PREFIX } from '../core/labels.js';
import { parseDuration } from '../core/duration.js';
import { asImageRef } from '../core/ids.js';
import { parseImageRef } from '../core/image-ref.js';
import { interpolateValue, type Env } from './interpolate.js';
import { parseEnvEntries } from './env-file.js';
import { projectPath } from './project-files.js';
import { posix } from 'node:path';
import { normalizeBackup, normalizeWindow } from './normalize-backup.js';
import { normalizePorts, normalizeVolumes, type Report, type NormalizeScope } from './normalize-ports-volumes.js';
import { normalizeExtraHosts, normalizeLinks, normalizeServiceNetworking, stringList } from './normalize-networks.js';
import { normalizeRuntime } from './normalize-runtime.js';
import { normalizeUpdateSettings } from './normalize-update.js';
import { normalizeSecretsAndConfigs, type SecretsScope } from './normalize-secrets.js';
import { splitShellWords } from './shell-words.js';
import type { AgentOptions, ContainerSpec, Dependency, DependencyCondition, HealthcheckSpec, NetworkSpec, Probe, ProbeTiming, RestartPolicy } from '../model/desired.js';

export const HEALTH_DEFAULTS = { timeoutMs: 120_000, stabilizationMs: 10_000 } as const;
export const PROBE_DEFAULTS: ProbeTiming = { intervalMs: 1000, timeoutMs: 2000, retries: 3 };

type Raw = Record<string, unknown>;

export interface NormalizedService {
  spec: ContainerSpec;
  agent: AgentOptions;
  dependsOn: Dependency[];
  /** Keys of the top-level networks it joins. */
  networks: string[];
}

/**
 * Extension keys one or two letters away from `x-agent` (`x-agnet`, `x-agents`): Compose allows
 * any `x-` key and ignores it, so a typo would silently drop the health probes and the policy.
 */
export function nearAgentKeys(raw: Raw): string[] {
  return Object.keys(raw).filter((k) => k.startsWith('x-') && k !== 'x-agent' && editDistance(k.toLowerCase(), 'x-agent') <= 2);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] as number;
}

/** Turns one schema-valid Compose service into the agent's model, reporting what the schema cannot see. */
export function normalizeService(raw: Raw, base: (string | number)[], ctx: NormalizeScope & { env: Env; networks: Record<string, NetworkSpec>; defined: SecretsScope; secretValues?: Set<string>; allowUnset?: boolean }, report: Report): NormalizedService {
  const image = String(raw.image);
  const parsed = parseImageRef(image);
  if (!parsed) report([...base, 'image'], `"${image}" is not a valid image reference (expected registry/name:tag@sha256:...)`);
  else if (!parsed.digest) report([...base, 'image'], `image "${image}" is not pinned by digest; the agent cannot tell a re-pushed tag from the one you reviewed`, 'warning');
  else if (!parsed.digest.startsWith('sha256:')) report([...base, 'image'], `not supported: digest algorithm "${parsed.digest.split(':')[0]}": pin the image with the sha256 digest the registry reports (Docker pulls by sha256 only)`);

  const service = String(base[1]);
  const net = normalizeServiceNetworking(raw, base, { stack: ctx.stack, service, networks: ctx.networks, containerOf: ctx.containerOf }, report);
  const networkMode = net.networkMode;
  const ports = normalizePorts(raw.ports as unknown[] | undefined, [...base, 'ports'], report);
  if (networkMode === 'host' && ports.length > 0) report([...base, 'ports'], 'ports have no effect with network_mode: host; the service listens on the host directly', 'warning');
  if (networkMode.startsWith('container:') && ports.length > 0) report([...base, 'ports'], `ports cannot be published by a service that shares another's network namespace (${String(raw.network_mode)}): publish them on that service`);

  const spec: ContainerSpec = {
    image: asImageRef(image),
    // As Compose: the env files in order, then `environment:` over them.
    environment: { ...envFiles(raw.env_file, [...base, 'env_file'], ctx, report), ...normalizeEnvironment(raw.environment, [...base, 'environment'], ctx.env, report, ctx.allowUnset) },
    ports,
    volumes: normalizeVolumes(raw.volumes as unknown[] | undefined, [...base, 'volumes'], ctx, report),
    networkMode,
    restart: ((raw.restart as string | undefined) ?? 'no') as RestartPolicy,
    labels: normalizeLabels(raw.labels, [...base, 'labels'], report),
  };
  if (typeof raw.container_name === 'string') spec.containerName = raw.container_name;
  const granted = normalizeSecretsAndConfigs(raw, base, ctx, report);
  spec.volumes.push(...granted.mounts);
  if (granted.files.length > 0) spec.files = granted.files;
  if (net.networks) spec.networks = net.networks;
  if (typeof raw.hostname === 'string') spec.hostname = raw.hostname;
  if (typeof raw.domainname === 'string') spec.domainname = raw.domainname;
  const links = normalizeLinks(raw.links, ctx.containerOf);
  if (links) spec.links = links.links;
  const extraHosts = normalizeExtraHosts(raw.extra_hosts);
  if (extraHosts) spec.extraHosts = extraHosts;
  const dns = stringList(raw.dns);
  if (dns) spec.dns = dns;
  const dnsSearch = stringList(raw.dns_search);
  if (dnsSearch) spec.dnsSearch = dnsSearch;
  const dnsOptions = stringList(raw.dns_opt);
  if (dnsOptions) spec.dnsOptions = dnsOptions;
  const runtime = normalizeRuntime(raw, base, ctx.containerOf, report);
  if (runtime.runtime) spec.runtime = runtime.runtime;
  const command = words(raw.command, [...base, 'command'], report);
  if (command) spec.command = command;
  const entrypoint = words(raw.entrypoint, [...base, 'entrypoint'], report);
  if (entrypoint) spec.entrypoint = entrypoint;
  const healthcheck = normalizeHealthcheck(raw.healthcheck as Raw | undefined, [...base, 'healthcheck'], report);
  if (healthcheck) spec.healthcheck = healthcheck;
  if (typeof raw.user === 'string') spec.user = raw.user;
  if (typeof raw.init === 'boolean') spec.init = raw.init;
  if (raw.stop_grace_period !== undefined) spec.stopGracePeriodMs = parseDuration(raw.stop_grace_period as string);
  if (typeof raw.stop_signal === 'string') spec.stopSignal = /^\d+$/.test(raw.stop_signal) || raw.stop_signal.startsWith('SIG') ? raw.stop_signal : `SIG${raw.stop_signal}`;

  if (typeof raw.platform === 'string') spec.platform = raw.platform;
  checkReplicas(raw, base, report);

  const agent = normalizeAgentOptions(raw['x-agent'] as Raw | undefined);
  const pull = pullPolicy(raw.pull_policy, [...base, 'pull_policy'], report);
  if (pull) agent.pullPolicy = pull;
  const xagent = raw['x-agent'] as Raw | undefined;
  const backup = normalizeBackup(xagent?.backup as Raw | undefined, String(base[1]), spec.volumes, ctx.declared, [...base, 'x-agent', 'backup'], report);
  if (backup) agent.backup = backup;
  const window = normalizeWindow(xagent?.window as Raw | undefined, [...base, 'x-agent', 'window'], report);
  if (window) agent.window = window;
  normalizeUpdateSettings(raw, spec, agent, ctx.declared, base, report);
  // Sharing a network namespace or linking to a service means starting after it, as Compose does.
  const dependsOn = normalizeDependsOn(raw.depends_on);
  for (const target of [...net.implicitDependencies, ...(links?.services ?? []), ...runtime.shares]) if (!dependsOn.some((d) => d.service === target)) dependsOn.push({ service: target, condition: 'service_started' });
  return { spec, agent, dependsOn, networks: net.uses };
}

/** Compose's pull_policy; the forms that build or refresh are refused: the agent runs the pinned digest Git names. */
function pullPolicy(raw: unknown, path: (string | number)[], report: Report): 'always' | 'never' | undefined {
  if (raw === undefined || raw === 'missing' || raw === 'if_not_present') return undefined;
  if (raw === 'always' || raw === 'never') return raw;
  if (raw === 'build') report(path, 'not supported: pull_policy: build: the agent deploys pinned images from a registry; build the image in CI and pin it');
  else if (raw === 'refresh' || raw === 'daily' || raw === 'weekly' || /^every_([0-9]+[wdhms])+$/.test(String(raw))) report(path, `not supported: pull_policy: ${String(raw)}: the agent runs the digest pinned in Git, so a refresh could never bring anything new; new versions come as commits (Renovate)`);
  else report(path, `unknown pull_policy "${String(raw)}" (always, never, missing, if_not_present)`);
  return undefined;
}

/** `scale` and `deploy.replicas`: one container per service, as the agent updates it (with its health gate and rollback). */
function checkReplicas(raw: Raw, base: (string | number)[], report: Report): void {
  const replicas = (raw.deploy as { replicas?: unknown } | undefined)?.replicas;
  const forms: [unknown, (string | number)[]][] = [[raw.scale, [...base, 'scale']], [replicas, [...base, 'deploy', 'replicas']]];
  for (const [value, path] of forms) {
    if (value === undefined || Number(value) === 1) continue;
    report(path, `not supported: ${String(value)} containers of one service: the agent runs each service as one container, replaced through a transaction with its health gate and rollback; declare copies as services of their own`);
  }
}

function words(value: unknown, path: (string | number)[], report: Report): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String);
  const split = splitShellWords(String(value));
  if (!split) report(path, 'unterminated quote');
  return split;
}

function normalizeEnvironment(value: unknown, path: (string | number)[], env: Env, report: Report, allowUnset = false): Record<string, string> {
  const out: Record<string, string> = {};
  const set = (key: string, v: unknown, at: (string | number)[]) => {
    if (v === null || v === undefined) {
      // Compose: a name without a value passes the variable through (here: the env file, or an allowed variable of the agent's environment).
      const passed = env[key];
      if (passed === undefined && allowUnset) report(at, `environment variable ${key} has no value and is not set: left out (--allow-unset)`, 'warning');
      else if (passed === undefined) report(at, `environment variable ${key} has no value and is not set in the env file or the allowed environment (interpolation.allowEnv)`);
      else out[key] = passed;
      return;
    }
    out[key] = typeof v === 'string' ? v : String(v);
  };
  if (Array.isArray(value)) {
    value.forEach((item: string, i) => {
      const eq = item.indexOf('=');
      if (eq < 0) set(item, undefined, [...path, i]);
      else set(item.slice(0, eq), item.slice(eq + 1), [...path, i]);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) set(k, v, [...path, k]);
  }
  return out;
}

/** `env_file`: files of the repository, relative to the desired-state directory, read as Compose reads them. */
function envFiles(raw: unknown, path: (string | number)[], ctx: NormalizeScope & { env: Env; secretValues?: Set<string>; allowUnset?: boolean }, report: Report): Record<string, string> {
  if (raw === undefined) return {};
  const items = (Array.isArray(raw) ? raw : [raw]) as (string | { path: string; required?: boolean; format?: 'raw' })[];
  const out: Record<string, string> = {};
  items.forEach((item, i) => {
    const o = typeof item === 'string' ? { path: item } : item;
    const at = Array.isArray(raw) ? [...path, i] : path;
    const rel = projectPath(o.path);
    if ('error' in rel) return report(at, rel.error);
    if (posix.isAbsolute(rel.path)) return report(at, `not supported: env_file "${o.path}" on the host: the agent reads env files from the repository (a path relative to the desired-state directory); put host secrets in the agent's env file (--env-file) and name them under environment:`);
    const entry = ctx.project.get(rel.path);
    if (!entry || entry.kind !== 'file') {
      if (o.required === false) return;
      return report(at, entry ? `env_file "${o.path}" is not a regular file` : `env_file "${o.path}" is not in the repository (write required: false if it is optional)`);
    }
    if (entry.content === undefined) return report(at, `env_file "${o.path}" is too large to be an env file (${entry.size} bytes)`);
    const parsed = o.format === 'raw' ? Object.entries(rawEnvFile(entry.content)).map(([key, value]) => ({ key, value, literal: true })) : parseEnvEntries(entry.content);
    for (const { key: k, value: v, literal } of parsed) {
      const r = literal ? { value: v, issues: [] } : interpolateValue(v, ctx.env, [], [], ctx.allowUnset ? [] : undefined);
      // The message names the key only: the value (and any name read out of it) may be a password.
      if (r.issues.length > 0) report(at, `${o.path}: the value of ${k} refers to a variable that is not set, or is not a valid \${...} reference (quote it in single quotes to take it as written)`);
      out[k] = String(r.value);
      // Env files hold the passwords: their values are kept out of every text the agent writes.
      ctx.secretValues?.add(out[k]);
    }
  });
  return out;
}

/** `format: raw`: each line KEY=VALUE taken as it is, no quotes or variables. */
function rawEnvFile(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.trim() && !l.trimStart().startsWith('#') && l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1)]));
}

function normalizeLabels(value: unknown, path: (string | number)[], report: Report): Record<string, string> {
  const out: Record<string, string> = {};
  const entries: [string, unknown, (string | number)[]][] = Array.isArray(value)
    ? value.map((item: string, i) => {
        const eq = item.indexOf('=');
        return [eq < 0 ? item : item.slice(0, eq), eq < 0 ? '' : item.slice(eq + 1), [...path, i]];
      })
    : Object.entries((value as Raw | undefined) ?? {}).map(([k, v]) => [k, v, [...path, k]]);
  for (const [k, v, at] of entries) {
    if (k.startsWith(AGENT_LABEL_PREFIX)) report(at, `labels starting with "${AGENT_LABEL_PREFIX}" are reserved for the agent`);
    else if (k.startsWith(COMPOSE_LABEL_PREFIX)) report(at, `labels starting with "${COMPOSE_LABEL_PREFIX}" are set by the agent as Compose sets them (project, service, container number); Compose overrides them too`);
    else out[k] = String(v);
  }
  return out;
}

function normalizeHealthcheck(raw: Raw | undefined, path: (string | number)[], report: Report): HealthcheckSpec | undefined {
  if (!raw) return undefined;
  if (raw.start_interval !== undefined) report([...path, 'start_interval'], 'not supported: start_interval needs Docker Engine 25; the agent\'s health gate runs the check at once while the container starts, so it is not needed');
  if (raw.disable === true) return { disabled: true };
  const test = raw.test;
  let argv: string[] | undefined;
  if (typeof test === 'string') argv = ['CMD-SHELL', test];
  else if (Array.isArray(test)) argv = test.map(String);
  if (argv?.[0] === 'NONE') return { disabled: true };
  const hc: HealthcheckSpec = { disabled: false, test: argv ?? [] };
  const ms = (k: string) => (raw[k] === undefined ? undefined : parseDuration(raw[k] as string));
  if (ms('interval') !== undefined) hc.intervalMs = ms('interval');
  if (ms('timeout') !== undefined) hc.timeoutMs = ms('timeout');
  if (ms('start_period') !== undefined) hc.startPeriodMs = ms('start_period');
  if (typeof raw.retries === 'number') hc.retries = raw.retries;
  return hc;
}

function normalizeAgentOptions(raw: Raw | undefined): AgentOptions {
  const health = (raw?.health as Raw | undefined) ?? {};
  return {
    policy: (raw?.policy as 'auto' | 'manual' | undefined) ?? 'manual',
    ...(raw?.paused === true ? { paused: true } : {}),
    health: {
      timeoutMs: health.timeout === undefined ? HEALTH_DEFAULTS.timeoutMs : (parseDuration(health.timeout as string) ?? HEALTH_DEFAULTS.timeoutMs),
      stabilizationMs: health.stabilization === undefined ? HEALTH_DEFAULTS.stabilizationMs : (parseDuration(health.stabilization as string) ?? HEALTH_DEFAULTS.stabilizationMs),
      probes: ((health.probes as Raw[] | undefined) ?? []).map(normalizeProbe),
    },
  };
}

function normalizeProbe(raw: Raw): Probe {
  const timing: ProbeTiming = {
    intervalMs: raw.interval === undefined ? PROBE_DEFAULTS.intervalMs : (parseDuration(raw.interval as string) ?? PROBE_DEFAULTS.intervalMs),
    timeoutMs: raw.timeout === undefined ? PROBE_DEFAULTS.timeoutMs : (parseDuration(raw.timeout as string) ?? PROBE_DEFAULTS.timeoutMs),
    retries: (raw.retries as number | undefined) ?? PROBE_DEFAULTS.retries,
  };
  if (raw.http !== undefined) {
    const h = raw.http;
    if (typeof h === 'string') return { kind: 'http', url: h, expectStatus: [], ...timing };
    const o = h as { url: string; status?: number | number[] };
    const status = o.status === undefined ? [] : Array.isArray(o.status) ? o.status : [o.status];
    return { kind: 'http', url: o.url, expectStatus: status, ...timing };
  }
  if (raw.tcp !== undefined) {
    const t = raw.tcp;
    if (typeof t === 'string') {
      const i = t.lastIndexOf(':');
      return { kind: 'tcp', host: t.slice(0, i), port: Number(t.slice(i + 1)), ...timing };
    }
    const o = t as { host?: string; port: number };
    return { kind: 'tcp', host: o.host ?? '127.0.0.1', port: o.port, ...timing };
  }
  return { kind: 'exec', argv: (raw.exec as string[]).map(String), ...timing };
}

function normalizeDependsOn(raw: unknown): Dependency[] {
  if (Array.isArray(raw)) return raw.map((s) => ({ service: String(s), condition: 'service_started' as const }));
  if (raw && typeof raw === 'object') {
    return Object.entries(raw as Record<string, { condition?: DependencyCondition; required?: boolean; restart?: boolean }>).map(([service, o]) => ({
      service,
      condition: o.condition ?? 'service_started',
      ...(o.required === false ? { required: false } : {}),
      ...(o.restart === true ? { restart: true } : {}),
    }));
  }
  return [];
}
