import { AgentError } from '../core/errors.js';

export type RawConfig = Record<string, unknown>;

interface Override {
  env: string;
  path: string[];
  parse: (value: string, name: string) => unknown;
}

const text = (v: string) => v;
const int = (v: string, name: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new AgentError('CONFIG_INVALID', `${name} must be a whole number, not "${v}"`);
  return n;
};
const bool = (v: string, name: string) => {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new AgentError('CONFIG_INVALID', `${name} must be true or false, not "${v}"`);
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** Every configuration key an environment variable can override; documented in docs/configuration.md. */
export const ENV_OVERRIDES: Override[] = [
  { env: 'AGENT_STATE_DIR', path: ['stateDir'], parse: text },
  { env: 'AGENT_STACK', path: ['stack'], parse: text },
  // Compose's own variable, then the agent's, which wins when both are set.
  { env: 'COMPOSE_PROFILES', path: ['profiles'], parse: list },
  { env: 'AGENT_PROFILES', path: ['profiles'], parse: list },
  // Compose's COMPOSE_FILE (paths separated by ":", as on Linux), then the agent's comma list.
  { env: 'COMPOSE_FILE', path: ['composeFiles'], parse: (v) => v.split(':').map((s) => s.trim()).filter(Boolean) },
  { env: 'AGENT_COMPOSE_FILES', path: ['composeFiles'], parse: list },
  { env: 'AGENT_HOST_NAME', path: ['host'], parse: text },
  { env: 'AGENT_SOURCE_DIR', path: ['source', 'dir'], parse: text },
  { env: 'AGENT_RENOVATE_CONFIG', path: ['source', 'renovateConfig'], parse: text },
  { env: 'AGENT_GIT_URL', path: ['source', 'git', 'url'], parse: text },
  { env: 'AGENT_GIT_BRANCH', path: ['source', 'git', 'branch'], parse: text },
  { env: 'AGENT_GIT_PATH', path: ['source', 'git', 'path'], parse: text },
  { env: 'AGENT_GIT_USERNAME', path: ['source', 'git', 'auth', 'username'], parse: text },
  { env: 'AGENT_GIT_PASSWORD_FILE', path: ['source', 'git', 'auth', 'passwordFile'], parse: text },
  { env: 'AGENT_GIT_PASSWORD_ENV', path: ['source', 'git', 'auth', 'passwordEnv'], parse: text },
  { env: 'AGENT_GIT_AUTHOR_NAME', path: ['source', 'git', 'author', 'name'], parse: text },
  { env: 'AGENT_GIT_AUTHOR_EMAIL', path: ['source', 'git', 'author', 'email'], parse: text },
  { env: 'AGENT_GIT_REVERT', path: ['source', 'git', 'revert'], parse: bool },
  { env: 'AGENT_GIT_COMMIT_CONTAINER_OUTPUT', path: ['source', 'git', 'commitContainerOutput'], parse: bool },
  { env: 'AGENT_GIT_VERIFY_KEYS', path: ['source', 'git', 'verify', 'publicKeyFiles'], parse: list },
  { env: 'AGENT_GIT_VERIFY_ALLOW_REWIND', path: ['source', 'git', 'verify', 'allowRewind'], parse: bool },
  { env: 'AGENT_GIT_SIGNING_KEY_FILE', path: ['source', 'git', 'signing', 'keyFile'], parse: text },
  { env: 'AGENT_BACKUP_DIR', path: ['backup', 'dir'], parse: text },
  { env: 'AGENT_BACKUP_FORMAT', path: ['backup', 'format'], parse: text },
  { env: 'AGENT_BACKUP_RESTIC_IMAGE', path: ['backup', 'restic', 'image'], parse: text },
  { env: 'AGENT_BACKUP_RESTIC_S3_ENDPOINT', path: ['backup', 'restic', 's3', 'endpoint'], parse: text },
  { env: 'AGENT_BACKUP_RESTIC_S3_BUCKET', path: ['backup', 'restic', 's3', 'bucket'], parse: text },
  { env: 'AGENT_BACKUP_RESTIC_S3_PREFIX', path: ['backup', 'restic', 's3', 'prefix'], parse: text },
  { env: 'AGENT_BACKUP_RESTIC_S3_REGION', path: ['backup', 'restic', 's3', 'region'], parse: text },
  { env: 'AGENT_BACKUP_RESTIC_S3_CA_CERT_FILE', path: ['backup', 'restic', 's3', 'caCertFile'], parse: text },
  { env: 'AGENT_BACKUP_S3_BUCKET', path: ['backup', 's3', 'bucket'], parse: text },
  { env: 'AGENT_BACKUP_S3_PREFIX', path: ['backup', 's3', 'prefix'], parse: text },
  { env: 'AGENT_BACKUP_S3_REGION', path: ['backup', 's3', 'region'], parse: text },
  { env: 'AGENT_BACKUP_S3_ENDPOINT', path: ['backup', 's3', 'endpoint'], parse: text },
  { env: 'AGENT_BACKUP_S3_SSE', path: ['backup', 's3', 'serverSideEncryption'], parse: text },
  { env: 'DOCKER_HOST', path: ['docker', 'host'], parse: text },
  { env: 'AGENT_DOCKER_CONFIG', path: ['docker', 'config'], parse: text },
  { env: 'AGENT_CHECK_TAGS', path: ['docker', 'checkTags'], parse: bool },
  { env: 'AGENT_INTERVAL', path: ['reconcile', 'interval'], parse: text },
  { env: 'AGENT_CONCURRENCY', path: ['reconcile', 'concurrency'], parse: int },
  { env: 'AGENT_PRUNE', path: ['reconcile', 'prune'], parse: bool },
  { env: 'AGENT_ENV_FILE', path: ['envFile'], parse: text },
  { env: 'AGENT_POLICY_FILE', path: ['policyFile'], parse: text },
  { env: 'AGENT_INTERPOLATE_ENV', path: ['interpolation', 'allowEnv'], parse: list },
  { env: 'AGENT_HTTP_LISTEN', path: ['http', 'listen'], parse: text },
  { env: 'AGENT_WEBHOOK_SECRET_FILE', path: ['webhook', 'secretFile'], parse: text },
  { env: 'AGENT_WEBHOOK_SECRET_ENV', path: ['webhook', 'secretEnv'], parse: text },
  { env: 'AGENT_LOG_LEVEL', path: ['log', 'level'], parse: text },
];

export function setPath(target: RawConfig, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as RawConfig;
  }
  node[path[path.length - 1] as string] = value;
}
