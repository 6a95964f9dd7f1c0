/**
 * The operator's policy: what a desired state may ask of this host. It lives in the agent's
 * configuration (or a file it names), outside the repository, so that whoever can push to the
 * repository or get a pull request merged cannot widen it. Checked after normalisation by
 * `validate`, `plan`, `apply` and `run` (agent/policy/check.ts); a violation is a located error
 * and nothing of that revision is applied.
 *
 * The defaults refuse what gives a container the host: binds of system paths, the Docker
 * socket or the agent's own files, the host's network and namespaces, privileged mode, added
 * capabilities, devices, unconfined security profiles, volumes of other projects, and probes
 * beyond loopback. The reference stack (desired-state/) passes them.
 */
import { posix } from 'node:path';
import { AgentError } from '../core/errors.js';

/** A host path a bind may use: the path and everything under it. */
export interface BindRule {
  path: string;
  /** Binds under this path must be read-only. */
  readOnly: boolean;
}

export type NetworkModeKind = 'bridge' | 'none' | 'host' | 'service' | 'container';

export interface OperatorPolicy {
  /** Where the policy came from, named in every refusal. */
  origin: string;
  /** Stack names the desired state may use (globs: `*` matches anything). */
  stacks: string[];
  /** Registry hosts images may come from (`docker.io`, `127.0.0.1:5000`; globs). */
  registries: string[];
  /** Image names, `registry/repository` (`docker.io/library/*`; globs). */
  repositories: string[];
  /** Service images must carry a digest. */
  requireDigest: boolean;
  /** A pinned digest that is not what its tag names at the registry is only a warning (the tag a label). */
  allowDigestOnlyPins: boolean;
  /** Host paths binds may use; a bind anywhere else is refused. */
  binds: BindRule[];
  /** Every bind must be read-only. */
  bindsReadOnly: boolean;
  /**
   * Host paths no bind may reach (be, be inside, or contain) unless a `binds` rule names a path
   * at or inside them: the built-in ones, the agent's own files, and the operator's additions.
   */
  deniedPaths: string[];
  networkModes: NetworkModeKind[];
  /** Network drivers of the stack's own networks. */
  networkDrivers: string[];
  /** Existing networks the stack may join (`external: true`; globs). */
  externalNetworks: string[];
  /** `user: root` / `user: 0` allowed (the image's own default user is not checked here). */
  allowRootUser: boolean;
  allowPrivileged: boolean;
  /** Capabilities `cap_add` may add (`NET_ADMIN`, or `ALL`). */
  capabilities: string[];
  /** Host devices (`/dev/dri`, and what is under it) `devices` may map. */
  devices: string[];
  /** `pid`, `ipc`, `userns_mode: host`. */
  allowHostNamespaces: boolean;
  /** `security_opt` entries allowed (globs); the default allows `no-new-privileges` only. */
  securityOptions: string[];
  /** Images of scheduled jobs (certbot), by name (globs), and whether they need a digest. */
  jobImages: { allow: string[]; requireDigest: boolean };
  /** Engine names of volumes (globs; `${stack}` is the stack's name), their drivers, and the filesystems the local driver may mount (`type:`; a bind follows `binds`). */
  volumes: { names: string[]; drivers: string[]; types: string[] };
  /** Hosts the agent's own http and tcp probes may reach (globs). Metadata addresses are never allowed. */
  probeHosts: string[];
}

/** Paths a bind never reaches unless a rule names them (with the agent's own files, added at load). */
export const BUILTIN_DENIED_PATHS = ['/', '/etc', '/proc', '/sys', '/dev', '/boot', '/root', '/var/run/docker.sock', '/run/docker.sock', '/run/containerd', '/var/run/containerd', '/var/lib/docker', '/var/lib/containerd', '/run/systemd', '/var/run/systemd'];

export const DEFAULT_POLICY: Omit<OperatorPolicy, 'deniedPaths'> & { deniedPaths: string[] } = {
  origin: 'the default policy',
  stacks: ['*'],
  registries: ['*'],
  repositories: ['*'],
  requireDigest: true,
  allowDigestOnlyPins: false,
  // The reference stack gives Gitea the host's time zone, read-only, as Gitea's guide does.
  binds: [
    { path: '/etc/localtime', readOnly: true },
    { path: '/etc/timezone', readOnly: true },
  ],
  bindsReadOnly: false,
  deniedPaths: [...BUILTIN_DENIED_PATHS],
  networkModes: ['bridge', 'none', 'service'],
  networkDrivers: ['bridge'],
  externalNetworks: [],
  allowRootUser: false,
  allowPrivileged: false,
  capabilities: [],
  devices: [],
  allowHostNamespaces: false,
  securityOptions: ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges=true'],
  jobImages: { allow: ['docker.io/certbot/certbot'], requireDigest: false },
  volumes: { names: ['${stack}_*'], drivers: ['local'], types: ['nfs', 'nfs4', 'cifs', 'tmpfs'] },
  probeHosts: ['127.0.0.1', 'localhost', '::1'],
};

/** The agent's own files a bind must never reach: state, backups, configuration, credentials. */
export interface AgentPaths {
  stateDir: string;
  backupDir?: string;
  files: string[];
}

type Raw = Record<string, unknown>;

/** Settings that are a list of strings, or a boolean, taken as given. */
const LIST_SETTINGS = ['stacks', 'registries', 'repositories', 'networkDrivers', 'externalNetworks', 'securityOptions', 'probeHosts'] as const;
const BOOLEAN_SETTINGS = ['requireDigest', 'allowDigestOnlyPins', 'bindsReadOnly', 'allowRootUser', 'allowPrivileged', 'allowHostNamespaces'] as const;
const KEYS = new Set<string>([...LIST_SETTINGS, ...BOOLEAN_SETTINGS, 'binds', 'deniedPaths', 'networkModes', 'capabilities', 'devices', 'jobImages', 'volumes']);
const MODES = new Set<NetworkModeKind>(['bridge', 'none', 'host', 'service', 'container']);

/**
 * The policy from the configuration's `policy:` map (already checked by the configuration's
 * schema), over the defaults: a key given replaces the default's value, lists included, so
 * an operator sees in one place what is allowed.
 */
export function resolvePolicy(raw: Raw | undefined, origin: string, own: AgentPaths): OperatorPolicy {
  const p: OperatorPolicy = structuredClone({ ...DEFAULT_POLICY, origin: raw ? origin : DEFAULT_POLICY.origin });
  const bad = (key: string, why: string): never => {
    throw new AgentError('CONFIG_INVALID', `${origin}: policy.${key}: ${why}`);
  };
  for (const key of Object.keys(raw ?? {})) if (!KEYS.has(key)) bad(key, `unknown setting (known: ${[...KEYS].join(', ')})`);
  const r = raw ?? {};
  const list = (key: string): string[] | undefined => {
    const v = r[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) bad(key, 'must be a list of non-empty strings');
    return v as string[];
  };
  const bool = (key: string): boolean | undefined => {
    const v = r[key];
    if (v !== undefined && typeof v !== 'boolean') bad(key, 'must be true or false');
    return v as boolean | undefined;
  };
  const absolute = (key: string, path: string): string => {
    if (!path.startsWith('/')) bad(key, `"${path}" is not an absolute path`);
    return posix.normalize(path).replace(/(.)\/+$/, '$1');
  };
  for (const key of LIST_SETTINGS) p[key] = list(key) ?? p[key];
  for (const key of BOOLEAN_SETTINGS) p[key] = bool(key) ?? p[key];
  p.capabilities = (list('capabilities') ?? p.capabilities).map(capability);
  p.devices = (list('devices') ?? p.devices).map((d) => absolute('devices', d));
  const modes = list('networkModes');
  if (modes) {
    for (const m of modes) if (!MODES.has(m as NetworkModeKind)) bad('networkModes', `"${m}" is not one of ${[...MODES].join(', ')}`);
    p.networkModes = modes as NetworkModeKind[];
  }
  if (r.binds !== undefined) {
    if (!Array.isArray(r.binds)) bad('binds', 'must be a list of paths or {path, readOnly} maps');
    p.binds = (r.binds as unknown[]).map((b) => {
      if (typeof b === 'string') return { path: absolute('binds', b), readOnly: false };
      if (b && typeof b === 'object' && typeof (b as Raw).path === 'string' && Object.keys(b).every((k) => k === 'path' || k === 'readOnly') && ((b as Raw).readOnly === undefined || typeof (b as Raw).readOnly === 'boolean')) return { path: absolute('binds', (b as Raw).path as string), readOnly: (b as Raw).readOnly === true };
      return bad('binds', 'each entry is a path or a {path, readOnly} map');
    });
  }
  const denied = list('deniedPaths') ?? [];
  p.deniedPaths = [...BUILTIN_DENIED_PATHS, ...denied.map((d) => absolute('deniedPaths', d)), ...agentPaths(own)];
  for (const [key, sub, fields] of [['jobImages', p.jobImages, ['allow', 'requireDigest']], ['volumes', p.volumes, ['names', 'drivers', 'types']]] as const) {
    const v = r[key];
    if (v === undefined) continue;
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(key, `must be a map of ${fields.join(', ')}`);
    for (const [k, x] of Object.entries(v as Raw)) {
      if (!(fields as readonly string[]).includes(k)) bad(`${key}.${k}`, `unknown setting (known: ${fields.join(', ')})`);
      if (k === 'requireDigest') {
        if (typeof x !== 'boolean') bad(`${key}.${k}`, 'must be true or false');
      } else if (!Array.isArray(x) || x.some((s) => typeof s !== 'string' || s === '')) bad(`${key}.${k}`, 'must be a list of non-empty strings');
      (sub as Raw)[k] = x;
    }
  }
  return p;
}

function agentPaths(own: AgentPaths): string[] {
  return [own.stateDir, ...(own.backupDir ? [own.backupDir] : []), ...own.files].filter((f) => f.startsWith('/')).map((f) => posix.normalize(f));
}

/** `CAP_NET_ADMIN`, `net_admin` -> `NET_ADMIN`, as Docker reads them. */
export function capability(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper.slice(4) : upper;
}

/** A glob of `*` (anything, `/` included) against a whole name. */
export function globMatch(glob: string, name: string): boolean {
  const parts = glob.split('*');
  if (parts.length === 1) return glob === name;
  if (!name.startsWith(parts[0] as string) || !name.endsWith(parts[parts.length - 1] as string)) return false;
  let at = (parts[0] as string).length;
  const end = name.length - (parts[parts.length - 1] as string).length;
  if (at > end) return false;
  for (const part of parts.slice(1, -1)) {
    const i = name.indexOf(part, at);
    if (i < 0 || i + part.length > end) return false;
    at = i + part.length;
  }
  return true;
}

/** `path` is `base` or inside it. */
export function within(path: string, base: string): boolean {
  return base === '/' || path === base || path.startsWith(`${base}/`);
}
