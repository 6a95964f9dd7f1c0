import { createHmac } from 'node:crypto';
import { posix } from 'node:path';
import { canonicalJson, sha256Hex } from '../core/canonical.js';
import { composeFile, composeProject, projectFiles, type ComposeFile } from './compose-project.js';
import { containerName } from '../core/labels.js';
import { asSpecHash, type Revision, type SpecHash } from '../core/ids.js';
import { interpolateValue, referencedVariables, type Env } from './interpolate.js';
import { formatIssue, type ValidationIssue } from '../model/issues.js';
import { normalizeStackBackups } from './normalize-backup.js';
import { parseEnvFile } from './env-file.js';
import { mergeNetworks, mergeVolumes, type FileValue } from './top-level.js';
import { nearAgentKeys, normalizeService } from './normalize-service.js';
import { checkDefinitions, type SecretsScope } from './normalize-secrets.js';
import { DEFAULT_PARSE_LIMITS, issueAt, locate, parseYamlFile, type ParseLimits } from './parse.js';
import type { ProjectTree, SourceFile, SourceSnapshot } from '../model/source.js';
import { ProjectIndex, projectRootsIn, type ProjectRoots } from './project-files.js';
import { validateAgainstSchema } from './schema-validate.js';
import { checkServices } from './semantic.js';
import type { ContainerSpec, DesiredService, DesiredState, NetworkSpec, VolumeSpec } from '../model/desired.js';
import { checkPolicy } from '../policy/check.js';
import type { OperatorPolicy } from '../policy/policy.js';

export interface LoadInput {
  files: SourceFile[];
  revision: Revision;
  /** Variables for `${VAR}` interpolation and pass-through environment entries. */
  env: Env;
  /** Stack name when no file sets `name:`. */
  defaultStack: string;
  /** Shown when there is nothing to load, e.g. the directory path. */
  rootLabel?: string;
  limits?: ParseLimits;
  /** Files the source found and did not read (symbolic links): each is an error, by name. */
  refusedFiles?: { path: string; why: string }[];
  /** The project's `.env`: its variables are used for interpolation, the agent's environment on top (as Compose's shell on top). */
  dotEnv?: SourceFile;
  /** Active Compose profiles: a service with `profiles:` is part of the stack only when one of them is active. */
  profiles?: readonly string[];
  /** The Compose files of the project, in order (`-f`, COMPOSE_FILE, `source.files`); by default compose.yaml and compose.override.yaml. */
  composeFiles?: readonly string[];
  /** Unset variables are warnings (taken as empty), not errors: `agent validate --allow-unset` in a pull request's CI. */
  allowUnset?: boolean;
  /** The project directory's files (relative binds, env_file, secrets, configs); none: every relative path is a data directory. */
  tree?: ProjectTree;
  /** Where repository files are copied and data directories made (in the state directory); by default under /var/lib/gitops-agent. */
  roots?: ProjectRoots;
  /** The operator's policy, checked after normalisation: each violation is an error (every caller of the agent passes the configuration's). */
  policy?: OperatorPolicy;
  /** The host's key for spec hashes (state directory): each service then also gets its plain legacy hash, to recognise containers labelled before. */
  hashKey?: Buffer;
}

export type LoadResult =
  | { ok: true; state: DesiredState; prune: boolean; warnings: ValidationIssue[]; secrets: string[] }
  | { ok: false; issues: ValidationIssue[] };


/**
 * Reads desired-state files into the agent's model. Pure: no file system, no clock. Every
 * problem of every file is collected; a single error makes the whole state invalid, so a
 * half-valid commit never gets half-applied.
 */
export function loadDesiredState(given: LoadInput): LoadResult {
  const input = given.dotEnv ? { ...given, env: { ...parseEnvFile(given.dotEnv.content), ...given.env } } : given;
  const issues: ValidationIssue[] = (input.refusedFiles ?? []).map((f) => ({ file: f.path, line: 1, column: 1, pointer: '', message: f.why }));
  if (input.files.length === 0) {
    issues.push({ file: input.rootLabel ?? '.', line: 1, column: 1, pointer: '', message: `no desired-state files (*.yaml, *.yml) found${issues.length > 0 ? ' that could be read' : ''}` });
    return { ok: false, issues };
  }
  const valid: FileValue[] = [];
  const skipped = new Set<string>();
  const variables = new Set<string>();
  const project = new ProjectIndex(input.tree);
  /** Parsed, interpolated, tagged: a file of the project, its errors into `into` (warnings straight to the result). */
  const limits = input.limits ?? DEFAULT_PARSE_LIMITS;
  let totalBytes = 0;
  const read = (file: SourceFile, rel: string, into: ValidationIssue[]): ComposeFile | undefined => {
    // Every file read counts, an included one each time it is read: many files cannot add up to what one may not be.
    const bytes = Buffer.byteLength(file.content);
    // a file over the limit of one file is refused as such by the parser
    if (bytes <= limits.maxFileBytes) totalBytes += bytes;
    if (bytes <= limits.maxFileBytes && totalBytes > limits.maxTotalBytes) {
      into.push({ file: file.path, line: 1, column: 1, pointer: '', message: `the desired state's files add up to more than ${Math.round(limits.maxTotalBytes / 1024 / 1024)} MiB with this one: not read` });
      return undefined;
    }
    const { parsed, issues: parseIssues } = parseYamlFile(file, limits);
    into.push(...parseIssues);
    if (!parsed) return undefined;
    referencedVariables(parsed.value, variables);
    const unset: { path: (string | number)[]; message: string }[] = [];
    const interpolated = interpolateValue(parsed.value, input.env, [], [], input.allowUnset ? unset : undefined);
    for (const u of unset) issues.push({ ...issueAt(parsed, u.path, u.message), severity: 'warning' });
    into.push(...interpolated.issues.map((i) => issueAt(parsed, i.path, i.message)));
    const value = interpolated.value as Record<string, unknown>;
    return composeFile(rel, { ...parsed, value }, value, into);
  };
  const readFromTree = (prefix: string, into: ValidationIssue[]) => (rel: string): ComposeFile | { error: string } => {
    const entry = project.get(rel);
    if (!entry || entry.kind !== 'file') return { error: `${rel} is not a file of the desired-state directory` };
    if (entry.content === undefined) return { error: `${rel} is too large to be a Compose file (${entry.size} bytes)` };
    const before = into.length;
    const f = read({ path: `${prefix}${rel}`, content: entry.content }, rel, into);
    return f && into.length === before ? f : f ?? { error: `${rel} cannot be read (its errors are listed)` };
  };
  const units = projectUnits(input, issues);
  const composedFiles = new Set<string>();
  for (const unit of units) {
    const unitIssues: ValidationIssue[] = [];
    const prefix = unit[0]?.path.slice(0, unit[0].path.length - posix.basename(unit[0].path).length) ?? '';
    const files = unit.flatMap((f) => read(f, posix.basename(f.path), unitIssues) ?? []);
    // A document that is not a map is left to the schema, which says what it must be.
    const notMap = files.find((f) => f.value === null || typeof f.value !== 'object' || Array.isArray(f.value));
    const composed = notMap ? { parsed: notMap.parsed, value: notMap.value, read: [notMap.rel] } : files.length === unit.length ? composeProject(files, readFromTree(prefix, unitIssues), unitIssues) : undefined;
    if (!composed) {
      issues.push(...unitIssues);
      for (const f of files) for (const name of Object.keys(servicesOf(f.value))) skipped.add(name);
      continue;
    }
    for (const rel of composed.read) composedFiles.add(rel);
    const withValues = composed.parsed;
    const schemaIssues = [...validateAgainstSchema(withValues), ...unitIssues];
    issues.push(...schemaIssues);
    // Services with their own errors are left out of normalisation, the rest are still checked,
    // so that one run reports every problem; anything outside `services` spoils the whole file.
    const broken = new Set(schemaIssues.map((i) => i.pointer.split('/')));
    if ([...broken].some((p) => p[1] !== 'services' || p.length < 3)) {
      for (const name of Object.keys(servicesOf(withValues.value))) skipped.add(name);
      continue;
    }
    const value = withValues.value as Record<string, unknown>;
    const services = { ...servicesOf(value) };
    for (const p of broken) {
      const name = p[2] as string;
      skipped.add(name);
      delete services[name];
    }
    valid.push({ parsed: withValues, value: { ...value, services } });
  }
  // Beside a Compose project, other YAML files are not read, as Compose does not read them.
  // Refused rather than warned: an earlier agent read every file, and dropping one's services
  // (removed, when pruning) must never be what an upgrade does.
  if (units.length === 1 && units[0]!.length > 0 && input.files.length > units[0]!.length) {
    for (const f of input.files) {
      const rel = posix.basename(f.path);
      if (!units[0]!.includes(f) && !composedFiles.has(rel)) issues.push({ file: f.path, line: 1, column: 1, pointer: '', message: `not part of the Compose project (${units[0]!.map((u) => posix.basename(u.path)).join(' + ')}): Compose would not read it, and neither does the agent; list it in composeFiles in the configuration (or COMPOSE_FILE, -f) to merge it, or move it out of the directory` });
    }
  }

  const stack = resolveStackName(valid, input.defaultStack, issues);
  const volumes = mergeVolumes(valid, stack, issues);
  const declared = Object.fromEntries(Object.entries(volumes).map(([k, v]) => [k, v.name]));
  const networks = mergeNetworks(valid, stack, issues);
  const usedNetworks = new Set<string>();
  /** Services of profiles that are not active: not part of the stack. */
  const inactive = new Map<string, string[]>();
  const services: Record<string, DesiredService> = {};
  const origin = new Map<string, FileValue>();
  const containerOf = containerNames(valid, stack, issues);
  const secretValues = new Set<string>();
  const defined = secretsAndConfigs(valid, issues);
  const roots = input.roots ?? projectRootsIn('/var/lib/gitops-agent');
  for (const fv of valid) {
    const raw = (fv.value.services ?? {}) as Record<string, Record<string, unknown>>;
    for (const name of Object.keys(raw).sort()) {
      const base = ['services', name];
      const wanted = (raw[name] as { profiles?: string[] } | undefined)?.profiles;
      if (wanted && !wanted.some((p) => input.profiles?.includes(p))) {
        inactive.set(name, wanted);
        continue;
      }
      const first = origin.get(name);
      if (first) {
        const at = locate(first.parsed, base, true);
        issues.push(issueAt(fv.parsed, base, `service "${name}" is already defined in ${first.parsed.path}:${at.line}`, true));
        continue;
      }
      origin.set(name, fv);
      const report = (path: (string | number)[], message: string, severity?: 'error' | 'warning') => {
        const issue = issueAt(fv.parsed, path, message);
        issues.push(severity === 'warning' ? { ...issue, severity } : issue);
      };
      const n = normalizeService(raw[name] as Record<string, unknown>, base, { stack, declared, env: input.env, networks, containerOf, project, roots, secretValues, defined, ...(input.allowUnset ? { allowUnset: true } : {}) }, report);
      for (const k of n.networks) usedNetworks.add(k);
      services[name] = { name, spec: n.spec, hash: hashSpec(n.spec, input.hashKey), ...(input.hashKey ? { legacyHash: hashSpec(n.spec) } : {}), agent: n.agent, dependsOn: n.dependsOn, location: { file: fv.parsed.path, ...locate(fv.parsed, base, true) }, imageLocation: { file: fv.parsed.path, ...locate(fv.parsed, [...base, 'image']) } };
    }
  }

  // A service that needs one of an inactive profile: Compose refuses it too.
  for (const s of Object.values(services)) {
    s.dependsOn.forEach((d, i) => {
      const profiles = inactive.get(d.service);
      if (!profiles || d.required === false) return;
      const fv = origin.get(s.name) as FileValue;
      const list = Array.isArray((fv.value.services as Record<string, Record<string, unknown>>)[s.name]?.depends_on);
      issues.push(issueAt(fv.parsed, ['services', s.name, 'depends_on', list ? i : d.service], `depends on "${d.service}", which runs only with the profile ${profiles.join(' or ')}: activate it (--profile, AGENT_PROFILES) or add the profile to this service`));
    });
  }
  const facts = Object.values(services).map((s) => ({ name: s.name, dependsOn: s.dependsOn.filter((d) => !inactive.has(d.service)), ports: s.spec.ports }));
  const dependsOnIsList = (name: string) => Array.isArray((origin.get(name)?.value.services as Record<string, Record<string, unknown>>)[name]?.depends_on);
  const skippedFacts = [...skipped].filter((n) => !services[n]).map((name) => ({ name, dependsOn: [], ports: [] }));
  for (const p of checkServices([...facts, ...skippedFacts], dependsOnIsList)) {
    const fv = origin.get(p.service) as FileValue;
    issues.push(issueAt(fv.parsed, ['services', p.service, ...p.at], p.message));
  }

  for (const fv of valid) {
    const typo = (path: string[]) => issues.push({ ...issueAt(fv.parsed, path, `"${path[path.length - 1]}" is not "x-agent": Compose ignores x- keys, so these settings would be dropped; did you mean x-agent?`, true), severity: 'warning' });
    for (const key of nearAgentKeys(fv.value)) typo([key]);
    for (const [name, raw] of Object.entries(servicesOf(fv.value))) if (raw && typeof raw === 'object') for (const key of nearAgentKeys(raw as Record<string, unknown>)) typo(['services', name, key]);
  }
  // Stack options: backups and jobs, from the first file that has them.
  const stackFile = valid.find((fv) => fv.value['x-agent'] !== undefined);
  const stackReport = (path: (string | number)[], message: string, severity?: 'error' | 'warning') => stackFile && issues.push(severity === 'warning' ? { ...issueAt(stackFile.parsed, path, message), severity } : issueAt(stackFile.parsed, path, message));
  const { backups, jobs } = normalizeStackBackups(stackFile?.value['x-agent'] as Record<string, unknown> | undefined, stackReport, declared);
  for (const s of Object.values(services)) {
    const pg = s.agent.backup?.postgres;
    if (pg && !services[pg.service] && !skipped.has(pg.service)) issues.push(issueAt(origin.get(s.name)!.parsed, ['services', s.name, 'x-agent', 'backup', 'postgres', 'service'], `unknown service "${pg.service}"`));
  }
  for (const job of Object.values(jobs)) {
    const reload = job.certbot?.reload?.service;
    if (reload && !services[reload] && !skipped.has(reload)) stackReport(['x-agent', 'jobs', job.name, 'certbot', 'reload', 'service'], `unknown service "${reload}"`);
    for (const action of ['backup', 'drill'] as const) {
      job[action]?.services.forEach((name, i) => {
        const svc = services[name];
        if (!svc && !skipped.has(name)) stackReport(['x-agent', 'jobs', job.name, action, 'services', i], `unknown service "${name}"`);
        else if (svc && !svc.agent.backup) stackReport(['x-agent', 'jobs', job.name, action, 'services', i], `service "${name}" has no x-agent.backup block`);
      });
    }
  }

  if (input.policy) {
    const denied = policyIssues(input.policy, { stack, services, volumes, networks, usedNetworks, jobs, valid, origin, stackFile });
    // The loader's warning about a missing digest is the policy's error now, said once.
    const unpinned = new Set(denied.filter((d) => d.policy?.endsWith('requireDigest')).map((d) => `${d.file}:${d.pointer}`));
    for (let i = issues.length - 1; i >= 0; i--) if (issues[i]!.severity === 'warning' && unpinned.has(`${issues[i]!.file}:${issues[i]!.pointer}`) && issues[i]!.message.includes('not pinned by digest')) issues.splice(i, 1);
    issues.push(...denied);
  }

  // Messages name the variables, never their values (a secret must not reach status or a notification).
  const named = namingValues(issues, [...variables].map((v) => [v, input.env[v]] as const));
  const errors = named.filter((i) => i.severity !== 'warning');
  if (errors.length > 0) return { ok: false, issues: sortIssues(named) };
  const prune = valid.some((fv) => (fv.value['x-agent'] as { prune?: boolean } | undefined)?.prune === true);
  const sorted = Object.fromEntries(Object.keys(services).sort().map((k) => [k, services[k] as DesiredService]));
  return {
    ok: true,
    // Like Compose, only the networks a service joins are created.
    state: { stack, revision: input.revision, services: sorted, volumes, networks: Object.fromEntries([...usedNetworks].sort().map((k) => [k, networks[k] as NetworkSpec])), backups, jobs, files: valid.map((v) => v.parsed.path) },
    prune,
    warnings: sortIssues(named),
    // Values of the variables the desired state uses: kept out of every text the agent writes.
    secrets: [...[...variables].map((v) => input.env[v]), ...secretValues].filter((v): v is string => v !== undefined && v.length >= 4),
  };
}

/** The input of `loadDesiredState` for what a source read: its files, its `.env`, the files it refused. */
export function snapshotInput(snapshot: SourceSnapshot, o: { env: Env; defaultStack: string; roots: ProjectRoots; policy: OperatorPolicy | undefined; hashKey?: Buffer; rootLabel?: string; profiles?: readonly string[]; composeFiles?: readonly string[] }): LoadInput {
  return {
    ...(o.policy ? { policy: o.policy } : {}),
    ...(o.hashKey ? { hashKey: o.hashKey } : {}),
    roots: o.roots,
    ...(snapshot.tree ? { tree: snapshot.tree } : {}),
    files: snapshot.files,
    revision: snapshot.revision,
    env: o.env,
    defaultStack: o.defaultStack,
    ...(o.rootLabel ? { rootLabel: o.rootLabel } : {}),
    ...(snapshot.refusedFiles ? { refusedFiles: snapshot.refusedFiles } : {}),
    ...(snapshot.dotEnv ? { dotEnv: snapshot.dotEnv } : {}),
    ...(o.profiles && o.profiles.length > 0 ? { profiles: o.profiles } : {}),
    ...(o.composeFiles && o.composeFiles.length > 0 ? { composeFiles: o.composeFiles } : {}),
  };
}

/** Each value of a variable in the messages replaced by the variable's name (`${NAME}`), longest first. */
function namingValues(issues: ValidationIssue[], vars: (readonly [string, string | undefined])[]): ValidationIssue[] {
  const pairs = vars.filter((p): p is readonly [string, string] => p[1] !== undefined && p[1] !== '').sort((a, b) => b[1].length - a[1].length);
  if (pairs.length === 0) return issues;
  return issues.map((i) => {
    let message = i.message;
    for (const [name, value] of pairs) message = value.length >= 4 ? message.split(value).join(`\${${name}}`) : message.split(`"${value}"`).join(`"\${${name}}"`);
    return message === i.message ? i : { ...i, message };
  });
}

/** The policy's findings, located in the file that asks for each thing. */
function policyIssues(policy: OperatorPolicy, s: { stack: string; services: Record<string, DesiredService>; volumes: Record<string, VolumeSpec>; networks: Record<string, NetworkSpec>; usedNetworks: Set<string>; jobs: DesiredState['jobs']; valid: FileValue[]; origin: Map<string, FileValue>; stackFile: FileValue | undefined }): ValidationIssue[] {
  const rawService = (name: string) => (s.origin.get(name)?.value.services as Record<string, Record<string, unknown>> | undefined)?.[name];
  const networks = Object.fromEntries([...s.usedNetworks].map((k) => [k, s.networks[k] as NetworkSpec]));
  const findings = checkPolicy(policy, { stack: s.stack, services: s.services, raw: rawService, volumes: s.volumes, networks, jobs: s.jobs });
  return findings.map((f) => {
    const [head, key] = f.path;
    const fv = head === 'services' ? s.origin.get(String(key)) : head === 'x-agent' ? s.stackFile : s.valid.find((v) => (key === undefined ? v.value[head as string] !== undefined : (v.value[head as string] as Record<string, unknown> | undefined)?.[key as string] !== undefined));
    const parsed = (fv ?? s.valid[0])?.parsed;
    const message = `denied by the operator's policy (${f.setting}, ${policy.origin}): ${f.message}`;
    const issue: ValidationIssue = parsed ? issueAt(parsed, f.path, message) : { file: '.', line: 1, column: 1, pointer: '', message };
    return { ...issue, policy: f.setting };
  });
}

/**
 * The spec's hash, in the container's label: with the host's key an HMAC (`hmac-sha256:<hex>`),
 * so that a label reveals nothing of the environment it covers (a weak password could otherwise
 * be guessed against it); without one, the plain SHA-256 an earlier agent wrote.
 */
export function hashSpec(spec: ContainerSpec, key?: Buffer): SpecHash {
  if (!key) return asSpecHash(sha256Hex(canonicalJson(spec)));
  return asSpecHash(`hmac-sha256:${createHmac('sha256', key).update(canonicalJson(spec)).digest('hex')}`);
}

/**
 * Each service's container name: `container_name`, or Compose's `<stack>-<service>-1`. Two
 * services may not share one (the engine would refuse the second at run time).
 */
function containerNames(files: FileValue[], stack: string, issues: ValidationIssue[]): (service: string) => string {
  const explicit = new Map<string, string>();
  const taken = new Map<string, { service: string; file: FileValue }>();
  for (const fv of files) {
    for (const [service, raw] of Object.entries(servicesOf(fv.value))) {
      const name = (raw as { container_name?: unknown } | null)?.container_name;
      if (typeof name !== 'string') continue;
      const other = taken.get(name);
      if (other && other.service !== service) issues.push(issueAt(fv.parsed, ['services', service, 'container_name'], `container name "${name}" is already used by service "${other.service}" (${other.file.parsed.path}:${locate(other.file.parsed, ['services', other.service, 'container_name']).line})`));
      taken.set(name, { service, file: fv });
      explicit.set(service, name);
    }
  }
  return (service) => containerName(stack, service, explicit.get(service));
}

/** Top-level `secrets:` and `configs:` of every file, each checked where it is written. */
function secretsAndConfigs(files: FileValue[], issues: ValidationIssue[]): SecretsScope {
  const out: SecretsScope = { secrets: {}, configs: {} };
  for (const fv of files) {
    const mine: SecretsScope = { secrets: (fv.value.secrets ?? {}) as SecretsScope['secrets'], configs: (fv.value.configs ?? {}) as SecretsScope['configs'] };
    checkDefinitions(mine, (path, message) => issues.push(issueAt(fv.parsed, path, message)));
    Object.assign(out.secrets, mine.secrets);
    Object.assign(out.configs, mine.configs);
  }
  return out;
}

/**
 * The projects among the files: with a Compose file (compose.yaml, its override, or the files
 * listed), one project of those files in order; otherwise each file on its own, by name.
 */
function projectUnits(input: LoadInput, issues: ValidationIssue[]): SourceFile[][] {
  const byName = new Map(input.files.map((f) => [posix.basename(f.path), f]));
  const chosen = projectFiles([...byName.keys()], input.composeFiles);
  if (!chosen) return [...input.files].sort((a, b) => a.path.localeCompare(b.path)).map((f) => [f]);
  for (const m of chosen.missing) issues.push({ file: m, line: 1, column: 1, pointer: '', message: `listed in the Compose files of the configuration, but not in ${input.rootLabel ?? 'the desired-state directory'}` });
  return [chosen.files.map((n) => byName.get(n) as SourceFile)];
}

function servicesOf(value: unknown): Record<string, unknown> {
  const services = value && typeof value === 'object' ? (value as Record<string, unknown>).services : undefined;
  return services && typeof services === 'object' && !Array.isArray(services) ? (services as Record<string, unknown>) : {};
}

function resolveStackName(files: FileValue[], fallback: string, issues: ValidationIssue[]): string {
  let chosen: { name: string; file: FileValue } | undefined;
  for (const fv of files) {
    const name = fv.value.name as string | undefined;
    if (name === undefined) continue;
    if (chosen && chosen.name !== name) issues.push(issueAt(fv.parsed, ['name'], `stack name "${name}" differs from "${chosen.name}" in ${chosen.file.parsed.path}`));
    else chosen ??= { name, file: fv };
  }
  return chosen?.name ?? fallback;
}

function sortIssues(issues: ValidationIssue[]): ValidationIssue[] {
  return [...issues].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

export function formatIssues(issues: ValidationIssue[]): string {
  return issues.map(formatIssue).join('\n');
}
