import type { ErrorObject, ValidateFunction } from 'ajv';
import { loadValidator } from '../core/schema-validators.js';
import schema from '../../schema/desired-state.schema.json' with { type: 'json' };
import { fromPointer } from './issues.js';
import { type ValidationIssue } from '../model/issues.js';
import { issueAt, type ParsedFile } from './parse.js';

export const DESIRED_STATE_SCHEMA = schema;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  // Compiled once per process: a pure cache, not configuration.
  compiled ??= loadValidator('desired-state', schema);
  return compiled;
}

/** Validates one parsed file against the JSON Schema; every error, each located in the file. */
export function validateAgainstSchema(parsed: ParsedFile): ValidationIssue[] {
  const validate = validator();
  if (validate(parsed.value)) return [];
  return summarise(validate.errors ?? []).map((e) => toIssue(parsed, e));
}

/**
 * ajv reports every branch of an `anyOf`; a person wants one sentence. When one branch matched
 * the value's type and failed deeper, its deeper errors are the useful ones; otherwise one
 * "must be one of ..." line replaces the branches.
 */
function summarise(errors: ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const dropped = new Set<ErrorObject>();
  for (const union of unions) {
    const prefix = `${union.schemaPath}/`;
    const branchErrors = errors.filter((e) => e !== union && e.schemaPath.startsWith(prefix) && e.instancePath.startsWith(union.instancePath));
    // Errors below the union's value mean a branch matched its shape and failed inside it.
    const deep = branchErrors.filter((e) => e.instancePath !== union.instancePath);
    if (union.keyword === 'anyOf' && deep.length > 0) {
      dropped.add(union);
      const deepBranches = new Set(deep.map((e) => e.schemaPath.slice(prefix.length).split('/')[0]));
      for (const e of branchErrors) if (!deepBranches.has(e.schemaPath.slice(prefix.length).split('/')[0])) dropped.add(e);
    } else {
      for (const e of branchErrors) dropped.add(e);
    }
  }
  // `propertyNames` repeats its inner error; keep the inner one, which names the property.
  for (const e of errors) if (e.keyword === 'propertyNames') dropped.add(e);
  return errors.filter((e) => !dropped.has(e));
}

function toIssue(parsed: ParsedFile, e: ErrorObject): ValidationIssue {
  const path = fromPointer(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (propertyName !== undefined) {
    return issueAt(parsed, [...path, propertyName], `invalid name "${propertyName}": use letters, digits, "_", "." or "-", starting with a letter or digit`, true);
  }
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return issueAt(parsed, [...path, key], unknownKeyMessage(path, key), true);
    }
    case 'required':
      return issueAt(parsed, path, `missing required key "${String(params.missingProperty)}"`);
    case 'type':
      return issueAt(parsed, path, `must be ${article(String(params.type))}, not ${describeValue(valueAt(parsed.value, path))}`);
    case 'enum':
      return issueAt(parsed, path, `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, not ${JSON.stringify(valueAt(parsed.value, path))}`);
    case 'const':
      return issueAt(parsed, path, `must be ${JSON.stringify(params.allowedValue)}`);
    case 'anyOf':
      return issueAt(parsed, path, `must be ${branchTitles(e)}, not ${describeValue(valueAt(parsed.value, path))}`);
    case 'oneOf':
      return issueAt(parsed, path, (e.parentSchema as { title?: string } | undefined)?.title ? `must be ${(e.parentSchema as { title: string }).title}` : 'must match exactly one allowed form');
    case 'pattern':
      return issueAt(parsed, path, `${JSON.stringify(valueAt(parsed.value, path))} is not valid here${patternHint(e)}`);
    default:
      return issueAt(parsed, path, e.message ?? `fails ${e.keyword}`);
  }
}

/**
 * The Compose service keys the agent does not implement, each with why: a file using one is
 * refused, never run with the key dropped (docs/desired-state.md lists them).
 */
export const UNSUPPORTED_SERVICE_KEYS: Readonly<Record<string, string>> = {
  build: 'the agent deploys pinned images from a registry; build the image in CI, push it, and pin it with image: name:tag@sha256:...',
  develop: 'develop (watch) is for `docker compose watch` on a developer machine, not for a deployment',
  extends: 'extends is not read yet: copy the keys of the base service into this one',
  external_links: 'external_links is a legacy Docker link to a container outside the stack; join a shared external network instead',
  volumes_from: 'volumes_from mounts whatever another container has, which changes behind the agent; mount the named volumes themselves',
  label_file: 'label_file is not read yet: write the labels under labels:',
  annotations: 'annotations need Docker Engine 25 (API 1.43); the agent speaks API 1.41: use labels',
  attach: 'attach only changes what `docker compose up` prints; the agent never attaches (leave it out)',
  gpus: 'GPU device requests are not mapped yet: use devices: for the device files',
  models: 'models (Docker Model Runner) are not supported on a plain engine',
  provider: 'provider services are run by Compose plugins, not by the engine',
  post_start: 'lifecycle hooks need Docker Engine 25; run the command from the image\'s entrypoint instead',
  pre_stop: 'lifecycle hooks need Docker Engine 25; handle the stop signal in the service instead',
  use_api_socket: 'use_api_socket hands the engine\'s socket and credentials to the container; bind the socket explicitly if you really mean it',
  credential_spec: 'credential_spec is for Windows containers',
  isolation: 'isolation is for Windows containers',
  cpu_count: 'cpu_count is for Windows containers: use cpus',
  cpu_percent: 'cpu_percent is for Windows containers: use cpus',
  blkio_config: 'block I/O weights and limits are not mapped yet',
  cgroup: 'the cgroup namespace mode is not mapped yet (the engine\'s default applies only if the key is left out)',
  cgroup_parent: 'cgroup_parent is not mapped yet',
  cpu_period: 'CFS period and quota are not mapped yet: use cpus',
  cpu_quota: 'CFS period and quota are not mapped yet: use cpus',
  cpu_rt_period: 'real-time CPU scheduling is not mapped yet',
  cpu_rt_runtime: 'real-time CPU scheduling is not mapped yet',
  mem_swappiness: 'mem_swappiness is not mapped yet (cgroup v2 engines ignore it)',
  oom_kill_disable: 'oom_kill_disable is not mapped yet (cgroup v2 engines ignore it); set a memory limit instead',
  storage_opt: 'storage_opt depends on the storage driver and is not mapped yet',
  device_cgroup_rules: 'device_cgroup_rules are not mapped yet: use devices:',
  uts: 'the UTS namespace mode is not mapped yet',
  mac_address: 'a fixed MAC address is not mapped yet',
  runtime: 'another OCI runtime is not mapped yet',
  pull_refresh_after: 'pull_refresh_after is not mapped yet: the agent pulls an image when its pinned digest is missing',
};

function unknownKeyMessage(path: string[], key: string): string {
  if (path.length === 2 && path[0] === 'services') {
    const why = UNSUPPORTED_SERVICE_KEYS[key];
    if (why) return `not supported: ${why}`;
    return `unknown key "${key}": not a Compose key this agent supports (use an "x-" prefix for extensions)`;
  }
  if (path.length === 0 && key === 'include') return 'not supported: include is not read yet: put the services of the included files in the directory the agent reads';
  return `unknown key "${key}"`;
}

function branchTitles(e: ErrorObject): string {
  const branches = (e.schema as { title?: string; type?: string; enum?: unknown[] }[] | undefined) ?? [];
  const titles = branches.map((b) => b.title ?? (b.type ? article(b.type) : b.enum ? `one of ${b.enum.join(', ')}` : 'another form'));
  return titles.length > 1 ? `${titles.slice(0, -1).join(', ')} or ${titles[titles.length - 1]}` : (titles[0] ?? 'another form');
}

function patternHint(e: ErrorObject): string {
  const title = (e.parentSchema as { title?: string } | undefined)?.title;
  return title ? `: expected ${title}` : '';
}

function article(type: string): string {
  const names: Record<string, string> = { object: 'a map', array: 'a list', string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false', null: 'empty' };
  return type
    .split(',')
    .map((t) => names[t] ?? t)
    .join(' or ');
}

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v === 'number' ? 'the number' : 'the value'} ${String(v)}`;
}

function valueAt(root: unknown, path: string[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}
