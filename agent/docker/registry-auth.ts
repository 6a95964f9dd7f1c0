import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseImageRef } from '../core/image-ref.js';

export interface RegistryAuth {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

/** Where the Docker CLI keeps credentials: $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * Credentials for the registry of an image, read from the Docker config file at each pull (so
 * a `docker login` takes effect without a restart). Credential helpers are not run: a config
 * that needs one yields no credentials and the caller's log says so.
 */
export async function resolveRegistryAuth(ref: string, configPath: string): Promise<{ auth?: RegistryAuth; helper?: string }> {
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as DockerConfigFile;
  } catch {
    return {};
  }
  const registry = parseImageRef(ref)?.registry ?? 'docker.io';
  const keys = registry === 'docker.io' ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'] : [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.identitytoken) return { auth: { identitytoken: entry.identitytoken, serveraddress: key } };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      return { auth: { username: decoded.slice(0, i), password: decoded.slice(i + 1), serveraddress: key } };
    }
    if (entry.username) return { auth: { username: entry.username, password: entry.password ?? '', serveraddress: key } };
  }
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  return helper ? { helper } : {};
}
