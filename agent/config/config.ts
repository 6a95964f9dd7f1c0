import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import schema from '../../schema/agent-config.schema.json' with { type: 'json' };
import { parseDuration } from '../core/duration.js';
import { loadValidator } from '../core/schema-validators.js';
import type { ValidateFunction } from 'ajv';
import { AgentError } from '../core/errors.js';
import { dockerConfigPath } from '../docker/registry-auth.js';
import type { GitAuthConfig } from '../source/git/credentials.js';
import type { S3StoreOptions } from '../backup/store/s3.js';
import type { NotificationsConfig } from '../notify/config.js';
import { STATE_FILES } from '../state/store.js';
import { parseEnvFile } from '../desired/env-file.js';
import { ENV_OVERRIDES, setPath, type RawConfig } from './env-overrides.js';
import { globMatch, resolvePolicy, type OperatorPolicy } from '../policy/policy.js';

export interface GitSourceConfig {
  kind: 'git';
  url: string;
  branch: string;
  path: string;
  auth?: GitAuthConfig;
  author: { name: string; email: string };
  revert: boolean;
  revertAttempts: number;
  /** Quote the failed container's output in revert commits (off by default). */
  commitContainerOutput?: boolean;
  renovateConfig: string;
  verify?: { publicKeyFiles: string[]; allowRewind?: boolean };
  signing?: { keyFile: string; passphraseFile?: string };
}

/** A restic repository in S3 or an S3-compatible store. */
export interface ResticS3 {
  endpoint: string;
  bucket: string;
  prefix?: string;
  region?: string;
  caCertFile?: string;
}

export interface AgentConfig {
  stateDir: string;
  /** Stack name when the desired state has no `name:`. */
  stack: string;
  /** Compose profiles to activate. */
  profiles: string[];
  /** The Compose files of the project, in order (like `docker compose -f`); empty: compose.yaml and its override. */
  composeFiles: string[];
  /** This host's name in revert commits and notifications. */
  host: string;
  source: { kind: 'dir'; path: string; renovateConfig?: string } | GitSourceConfig;
  /** `checkTags`: `validate` and `plan` ask the registry what each pinned tag names (default true). */
  docker: { host?: string; configPath: string; checkTags?: boolean };
  reconcile: { intervalMs: number; jitter: number; concurrency: number; prune?: boolean };
  /** KEY=VALUE file whose variables `${VAR}` in the desired state may use (secrets). */
  envFile?: string;
  /** Variables of the agent's environment `${VAR}` may also read (globs); the agent's own are never among them. */
  interpolation: { allowEnv: string[]; ownVariables: string[] };
  /** The listener; `metricsTokenFile`: `/metrics` wants `Authorization: Bearer <its content>`. */
  http: { listen?: { host: string; port: number }; metricsTokenFile?: string };
  /** Archives in a local directory or S3, or a restic repository in a local directory. */
  backup: { kind: 'local'; dir: string } | ({ kind: 's3' } & S3StoreOptions) | { kind: 'restic'; dir: string; image: string; passwordFile: string; s3?: ResticS3 };
  /** Archives: the file holding the key their manifests are authenticated with (default: in the state directory). */
  manifestKeyFile?: string;
  /** `rejectReplays`: a delivery id seen in the last 24 h is refused. */
  webhook: { secretFile?: string; secretEnv?: string; rejectReplays?: boolean };
  notifications?: NotificationsConfig;
  logLevel: string;
  /** What the desired state may ask of this host (agent/policy/policy.ts); the defaults when the configuration has none. */
  policy: OperatorPolicy;
}

/** Flags given on the command line; they win over the environment, which wins over the file. */
export interface ConfigOverrides {
  config?: string;
  stateDir?: string;
  source?: string;
  gitUrl?: string;
  gitBranch?: string;
  gitPath?: string;
  stack?: string;
  /** `--profile`, repeatable. */
  profiles?: string[];
  /** `-f`, repeatable. */
  composeFiles?: string[];
  dockerHost?: string;
  prune?: boolean;
  interval?: string;
  logLevel?: string;
  envFile?: string;
  listen?: string;
}

export const DEFAULT_STATE_DIR = '/var/lib/gitops-agent';
export const DEFAULT_LISTEN = '127.0.0.1:9180';

let validator: ValidateFunction | undefined;

/** Defaults, then the configuration file, then environment variables, then flags. */
export async function loadConfig(overrides: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): Promise<AgentConfig> {
  const path = overrides.config ?? env.AGENT_CONFIG;
  const raw: RawConfig = path ? await readConfigFile(path) : {};
  for (const o of ENV_OVERRIDES) {
    const v = env[o.env];
    if (v !== undefined && v !== '') setPath(raw, o.path, o.parse(v, o.env));
  }
  const flags: [string | boolean | string[] | undefined, string[]][] = [
    [overrides.stateDir, ['stateDir']],
    [overrides.stack, ['stack']],
    [overrides.profiles, ['profiles']],
    [overrides.composeFiles, ['composeFiles']],
    [overrides.dockerHost, ['docker', 'host']],
    [overrides.interval, ['reconcile', 'interval']],
    [overrides.prune, ['reconcile', 'prune']],
    [overrides.envFile, ['envFile']],
    [overrides.logLevel, ['log', 'level']],
    [overrides.listen, ['http', 'listen']],
    [overrides.gitUrl, ['source', 'git', 'url']],
    [overrides.gitBranch, ['source', 'git', 'branch']],
    [overrides.gitPath, ['source', 'git', 'path']],
  ];
  for (const [value, p] of flags) if (value !== undefined) setPath(raw, p, value);
  // An explicit directory on the command line means "this directory", whatever the file says.
  if (overrides.source !== undefined) {
    setPath(raw, ['source', 'dir'], overrides.source);
    if (overrides.gitUrl === undefined) delete (raw.source as RawConfig).git;
  }
  validate(raw, path);
  const config = resolveConfig(raw, env);
  config.policy = await policyOf(raw, path, config);
  return config;
}

/** `policy:` of the configuration, or the file `policyFile` names; the agent's own files are denied paths. */
async function policyOf(raw: RawConfig, path: string | undefined, config: AgentConfig): Promise<OperatorPolicy> {
  const r = raw as { policy?: Record<string, unknown>; policyFile?: string };
  const own = {
    stateDir: config.stateDir,
    ...(config.backup.kind !== 's3' ? { backupDir: config.backup.dir } : {}),
    // every file the configuration names (`*File`, `*Files`: secrets, keys, certificates), the configuration itself, the Docker socket and credentials
    files: [path, config.docker.configPath, config.docker.host?.startsWith('unix://') ? config.docker.host.slice('unix://'.length) : undefined, ...namedFiles(raw)]
      .filter((f): f is string => typeof f === 'string' && f !== '')
      .map((f) => resolve(f)),
  };
  if (r.policy && r.policyFile) throw new AgentError('CONFIG_INVALID', `invalid configuration${path ? ` in ${path}` : ''}: policy and policyFile are both set: keep one`);
  if (!r.policyFile) return resolvePolicy(r.policy, path ?? 'the configuration', own);
  const file = resolve(r.policyFile);
  const value = await readConfigFile(file);
  own.files.push(file);
  return resolvePolicy(value, file, own);
}

function validate(raw: RawConfig, path: string | undefined): void {
  validator ??= loadValidator('agent-config', schema);
  if (validator(raw)) return;
  const problems = (validator.errors ?? []).map((e) => {
    const at = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
    const extra = e.keyword === 'additionalProperties' ? ` "${String((e.params as { additionalProperty: string }).additionalProperty)}"` : '';
    return `${at}: ${e.message ?? e.keyword}${extra}`;
  });
  throw new AgentError('CONFIG_INVALID', `invalid configuration${path ? ` in ${path}` : ''} (after environment overrides): ${problems.join('; ')}`, { data: { problems } });
}

function resolveConfig(raw: RawConfig, env: NodeJS.ProcessEnv): AgentConfig {
  const r = raw as {
    stateDir?: string;
    stack?: string;
    profiles?: string[];
    composeFiles?: string[];
    host?: string;
    source?: { dir?: string; renovateConfig?: string; git?: Omit<GitSourceConfig, 'kind'> & { author?: { name: string; email: string } } };
    docker?: { host?: string; config?: string; checkTags?: boolean };
    reconcile?: { interval?: string; concurrency?: number; prune?: boolean };
    envFile?: string;
    http?: { listen?: string; metricsTokenFile?: string };
    webhook?: { secretFile?: string; secretEnv?: string; rejectReplays?: boolean };
    log?: { level?: string };
    notifications?: NotificationsConfig;
    backup?: { format?: 'restic' | 'archive'; dir?: string; manifestKeyFile?: string; restic?: { image: string; passwordFile?: string; s3?: ResticS3 }; s3?: { bucket: string; prefix?: string; region?: string; endpoint?: string; forcePathStyle?: boolean; serverSideEncryption?: 'AES256' | 'aws:kms'; kmsKeyId?: string; partSizeMiB?: number } };
  };
  const intervalMs = parseDuration(r.reconcile?.interval ?? '60s');
  if (intervalMs === undefined || intervalMs < 1000) throw new AgentError('CONFIG_INVALID', `reconcile interval "${r.reconcile?.interval}" must be at least 1s`);
  const config: AgentConfig = {
    stateDir: resolve(r.stateDir ?? DEFAULT_STATE_DIR),
    stack: r.stack ?? 'default',
    profiles: r.profiles ?? [],
    composeFiles: r.composeFiles ?? [],
    host: r.host ?? hostname(),
    source: { kind: 'dir', path: resolve(r.source?.dir ?? 'desired-state'), ...(r.source?.renovateConfig ? { renovateConfig: resolve(r.source.renovateConfig) } : {}) },
    docker: { configPath: r.docker?.config ?? dockerConfigPath(env) },
    reconcile: { intervalMs, jitter: 0.1, concurrency: r.reconcile?.concurrency ?? 2 },
    http: { ...(r.http?.metricsTokenFile ? { metricsTokenFile: resolve(r.http.metricsTokenFile) } : {}) },
    backup: { kind: 'local', dir: resolve(r.backup?.dir ?? join(resolve(r.stateDir ?? DEFAULT_STATE_DIR), STATE_FILES.backups)) },
    webhook: { ...r.webhook },
    logLevel: r.log?.level ?? 'info',
    policy: resolvePolicy(undefined, '', { stateDir: resolve(r.stateDir ?? DEFAULT_STATE_DIR), files: [] }),
    interpolation: { allowEnv: (raw as { interpolation?: { allowEnv?: string[] } }).interpolation?.allowEnv ?? [], ownVariables: ownVariables(raw) },
  };
  for (const name of config.interpolation.allowEnv) {
    if (!name.includes('*') && isOwnVariable(name, config.interpolation.ownVariables)) throw new AgentError('CONFIG_INVALID', `interpolation.allowEnv: ${name} is one of the agent's own variables (its configuration or credentials): the desired state may never read it`);
  }
  const g = r.source?.git;
  if (g?.url) {
    config.source = {
      kind: 'git',
      url: g.url,
      branch: g.branch ?? 'main',
      path: (g.path ?? 'desired-state').replace(/^\/+|\/+$/g, ''),
      author: g.author ?? { name: 'gitops-agent', email: 'gitops-agent@localhost' },
      revert: g.revert ?? true,
      revertAttempts: g.revertAttempts ?? 3,
      renovateConfig: g.renovateConfig ?? 'renovate.json',
    };
    if (g.auth) config.source.auth = g.auth;
    if (g.verify) config.source.verify = g.verify;
    if (g.signing) config.source.signing = g.signing;
    if (g.commitContainerOutput) config.source.commitContainerOutput = true;
  }
  const s3 = r.backup?.s3;
  const stateDir = resolve(r.stateDir ?? DEFAULT_STATE_DIR);
  const format = r.backup?.format ?? (r.backup?.restic ? 'restic' : 'archive');
  if (format === 'restic') {
    if (!r.backup?.restic) throw new AgentError('CONFIG_INVALID', 'backup.format is restic but backup.restic.image is not set: the agent runs restic in a container of that image (pinned by digest)');
    if (s3) throw new AgentError('CONFIG_INVALID', 'backup.s3 holds archives: a restic repository in S3 goes under backup.restic.s3 (or set backup.format: archive)');
    config.backup = { kind: 'restic', dir: resolve(r.backup.dir ?? join(stateDir, STATE_FILES.restic)), image: r.backup.restic.image, passwordFile: resolve(r.backup.restic.passwordFile ?? join(stateDir, STATE_FILES.resticPassword)) };
    const rs3 = r.backup.restic.s3;
    if (rs3) config.backup.s3 = { ...rs3, ...(rs3.caCertFile ? { caCertFile: resolve(rs3.caCertFile) } : {}) };
  } else if (r.backup?.restic) {
    throw new AgentError('CONFIG_INVALID', 'backup.restic is set but backup.format is archive: remove one of them');
  }
  if (s3) {
    const { partSizeMiB, ...rest } = s3;
    config.backup = { kind: 's3', ...rest, prefix: s3.prefix ?? '', ...(partSizeMiB ? { partSizeBytes: partSizeMiB * 1024 * 1024 } : {}) };
  }
  if (r.notifications) config.notifications = r.notifications;
  if (r.backup?.manifestKeyFile) config.manifestKeyFile = resolve(r.backup.manifestKeyFile);
  if (r.docker?.host) config.docker.host = r.docker.host;
  if (r.docker?.checkTags === false) config.docker.checkTags = false;
  if (r.reconcile?.prune !== undefined) config.reconcile.prune = r.reconcile.prune;
  if (r.envFile) config.envFile = resolve(r.envFile);
  const listen = r.http?.listen ?? DEFAULT_LISTEN;
  if (listen !== '') {
    const i = listen.lastIndexOf(':');
    config.http.listen = { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) };
  }
  return config;
}

async function readConfigFile(path: string): Promise<RawConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot read configuration file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `configuration file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new AgentError('CONFIG_INVALID', `configuration file ${path}: the top level must be a map`);
  return value as RawConfig;
}

/** The values of every `...File` and `...Files` key of the configuration. */
function namedFiles(raw: RawConfig): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (/File$/.test(k) && typeof x === 'string') out.push(x);
      else if (/Files$/.test(k) && Array.isArray(x)) out.push(...x.filter((f): f is string => typeof f === 'string'));
      else walk(x);
    }
  };
  walk(raw);
  return out;
}

/** Prefixes of the agent's own variables: its configuration and the credentials of its clients. */
const OWN_PREFIXES = ['AGENT_', 'AWS_', 'RESTIC_', 'DOCKER_', 'GIT_', 'NODE_', 'SSH_', 'GNUPG', 'GPG_'];

/** Variables the configuration names as holding a secret (`secretEnv`, `passwordEnv`...). */
function ownVariables(raw: RawConfig): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'string' && /Env$/.test(k)) out.push(x);
      else walk(x);
    }
  };
  walk(raw);
  return out;
}

function isOwnVariable(name: string, own: readonly string[]): boolean {
  return own.includes(name) || OWN_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Variables for `${VAR}` in the desired state: the env file, and the variables of the agent's
 * environment `interpolation.allowEnv` names. Never the agent's own (its configuration, the
 * credentials of Git, S3, the webhook): whoever writes the desired state could otherwise copy
 * them into a container's environment.
 */
export async function loadInterpolationEnv(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string | undefined>> {
  const allowed = Object.fromEntries(Object.entries(env).filter(([name]) => config.interpolation.allowEnv.some((g) => globMatch(g, name)) && !isOwnVariable(name, config.interpolation.ownVariables)));
  if (!config.envFile) return allowed;
  let text: string;
  try {
    text = await readFile(config.envFile, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot read env file ${config.envFile}: ${(err as Error).message}`, { cause: err });
  }
  return { ...allowed, ...parseEnvFile(text) };
}
