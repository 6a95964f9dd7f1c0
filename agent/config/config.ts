import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../core/duration.js';
import { AgentError } from '../core/errors.js';
import { dockerConfigPath } from '../docker/registry-auth.js';

export interface AgentConfig {
  stateDir: string;
  /** Stack name when the desired state has no `name:`. */
  stack: string;
  source: { kind: 'dir'; path: string };
  docker: { host?: string; configPath: string };
  reconcile: { intervalMs: number; jitter: number; concurrency: number; prune?: boolean };
  /** KEY=VALUE file whose variables `${VAR}` in the desired state may use (secrets). */
  envFile?: string;
  logLevel: string;
}

/** Flags given on the command line; they win over the environment, which wins over the file. */
export interface ConfigOverrides {
  config?: string;
  stateDir?: string;
  source?: string;
  stack?: string;
  dockerHost?: string;
  prune?: boolean;
  interval?: string;
  logLevel?: string;
  envFile?: string;
}

export const DEFAULT_STATE_DIR = '/var/lib/gitops-agent';

export async function loadConfig(overrides: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): Promise<AgentConfig> {
  const path = overrides.config ?? env.AGENT_CONFIG;
  const file = path ? await readConfigFile(path) : {};
  const pick = <T>(flag: T | undefined, envValue: string | undefined, fileValue: unknown, parse: (v: string) => T, fallback: T): T => {
    if (flag !== undefined) return flag;
    if (envValue !== undefined && envValue !== '') return parse(envValue);
    if (fileValue !== undefined && fileValue !== null) return parse(String(fileValue));
    return fallback;
  };
  const f = file as Record<string, Record<string, unknown> | undefined> & Record<string, unknown>;
  const intervalText = pick(overrides.interval, env.AGENT_INTERVAL, f.reconcile?.interval, String, '60s');
  const intervalMs = parseDuration(intervalText);
  if (intervalMs === undefined || intervalMs < 1000) throw new AgentError('CONFIG_INVALID', `reconcile interval "${intervalText}" must be a duration of at least 1s`);
  const concurrency = pick(undefined, env.AGENT_CONCURRENCY, f.reconcile?.concurrency, Number, 2);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) throw new AgentError('CONFIG_INVALID', `reconcile concurrency must be 1..32, not ${concurrency}`);
  const pruneText = pick(overrides.prune === undefined ? undefined : String(overrides.prune), env.AGENT_PRUNE, f.reconcile?.prune, String, '');
  const config: AgentConfig = {
    stateDir: resolve(pick(overrides.stateDir, env.AGENT_STATE_DIR, f.stateDir, String, DEFAULT_STATE_DIR)),
    stack: pick(overrides.stack, env.AGENT_STACK, f.stack, String, 'default'),
    source: { kind: 'dir', path: resolve(pick(overrides.source, env.AGENT_SOURCE_DIR, f.source?.dir, String, 'desired-state')) },
    docker: {
      host: pick<string | undefined>(overrides.dockerHost, env.DOCKER_HOST, f.docker?.host, String, undefined),
      configPath: pick(undefined, env.AGENT_DOCKER_CONFIG, f.docker?.config, String, dockerConfigPath(env)),
    },
    reconcile: { intervalMs, jitter: 0.1, concurrency },
    logLevel: pick(overrides.logLevel, env.AGENT_LOG_LEVEL, (f.log as Record<string, unknown> | undefined)?.level, String, 'info'),
  };
  if (pruneText !== '') config.reconcile.prune = pruneText === 'true';
  const envFile = pick<string | undefined>(overrides.envFile, env.AGENT_ENV_FILE, f.envFile, String, undefined);
  if (envFile) config.envFile = resolve(envFile);
  return config;
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot read configuration file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const value = parseYaml(text) as unknown;
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error('the top level must be a map');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `configuration file ${path} is not valid: ${(err as Error).message}`, { cause: err });
  }
}

/** Variables for `${VAR}` in the desired state: the agent's environment, then the env file. */
export async function loadInterpolationEnv(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string | undefined>> {
  if (!config.envFile) return { ...env };
  let text: string;
  try {
    text = await readFile(config.envFile, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot read env file ${config.envFile}: ${(err as Error).message}`, { cause: err });
  }
  return { ...env, ...parseEnvFile(text) };
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] as string;
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) value = value.slice(1, -1);
    out[m[1] as string] = value;
  }
  return out;
}
