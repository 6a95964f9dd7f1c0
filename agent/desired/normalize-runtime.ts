import type { RuntimeOptions } from '../model/desired.js';
import type { Report } from './normalize-ports-volumes.js';

type Raw = Record<string, unknown>;

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Compose's sizes: a number of bytes, or `512m`, `2g`, `100kb` (powers of 1024). */
export function parseSize(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw;
  if (typeof raw !== 'string') return undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([bkmg])?b?$/i.exec(raw.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1));
}

function cpusOf(raw: unknown): number | undefined {
  if (raw === undefined) return undefined;
  return Math.round(Number(raw) * 1e9);
}

/** `service:<name>` to that service's container, as for network_mode. */
function namespace(mode: string | undefined, containerOf: (service: string) => string): string | undefined {
  if (mode === undefined) return undefined;
  return mode.startsWith('service:') ? `container:${containerOf(mode.slice('service:'.length))}` : mode;
}

/**
 * Compose's runtime keys as Docker's HostConfig takes them, the way `docker compose` maps them:
 * limits (also from `deploy.resources`), privileges, namespaces, devices, tmpfs, logging.
 * Returns the services whose namespaces it shares (`pid`/`ipc: service:<name>`): dependencies.
 */
export function normalizeRuntime(raw: Raw, base: (string | number)[], containerOf: (service: string) => string, report: Report): { runtime?: RuntimeOptions; shares: string[] } {
  const r: RuntimeOptions = {};
  const shares: string[] = [];
  const str = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : undefined);
  const bool = (k: string) => (typeof raw[k] === 'boolean' ? (raw[k] as boolean) : undefined);
  const list = (k: string) => (Array.isArray(raw[k]) && (raw[k] as unknown[]).length > 0 ? (raw[k] as unknown[]).map(String) : undefined);

  if (str('working_dir')) r.workingDir = str('working_dir');
  const expose = list('expose');
  if (expose) r.expose = expose.map((e) => (e.includes('/') ? e : `${e}/tcp`)).sort();
  for (const [key, field] of [['tty', 'tty'], ['stdin_open', 'stdinOpen'], ['read_only', 'readOnly'], ['privileged', 'privileged']] as const) {
    const v = bool(key);
    if (v !== undefined) r[field] = v;
  }
  for (const [key, field] of [['cap_add', 'capAdd'], ['cap_drop', 'capDrop'], ['security_opt', 'securityOpt'], ['group_add', 'groupAdd']] as const) {
    const v = list(key);
    if (v) r[field] = v;
  }
  if (raw.sysctls !== undefined) {
    const entries = Array.isArray(raw.sysctls) ? (raw.sysctls as string[]).map((e) => e.split('=') as [string, string]) : Object.entries(raw.sysctls as Record<string, unknown>).map(([k, v]) => [k, String(v)] as [string, string]);
    if (entries.length > 0) r.sysctls = Object.fromEntries(entries.map(([k, v]) => [k, v ?? '']));
  }
  if (raw.ulimits !== undefined) {
    r.ulimits = Object.entries(raw.ulimits as Record<string, number | { soft: number; hard: number }>)
      .map(([name, v]) => (typeof v === 'number' ? { name, soft: v, hard: v } : { name, soft: v.soft, hard: v.hard }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  // Limits: the service keys, or deploy.resources (Compose refuses both with different values).
  const res = (raw.deploy as { resources?: { limits?: Raw; reservations?: Raw } } | undefined)?.resources;
  const pick = (key: string, fromDeploy: unknown, path: (string | number)[], parse: (v: unknown) => number | undefined): number | undefined => {
    const direct = raw[key] === undefined ? undefined : parse(raw[key]);
    const deployed = fromDeploy === undefined ? undefined : parse(fromDeploy);
    if (raw[key] !== undefined && direct === undefined) report([...base, key], `"${String(raw[key])}" is not a size like 512m or 2g`);
    if (direct !== undefined && deployed !== undefined && direct !== deployed) report(path, `${key} and deploy.resources say different things; keep one`);
    return direct ?? deployed;
  };
  const memory = pick('mem_limit', res?.limits?.memory, [...base, 'deploy', 'resources', 'limits', 'memory'], parseSize);
  if (memory !== undefined) r.memoryBytes = memory;
  const reservation = pick('mem_reservation', res?.reservations?.memory, [...base, 'deploy', 'resources', 'reservations', 'memory'], parseSize);
  if (reservation !== undefined) r.memoryReservationBytes = reservation;
  const cpus = pick('cpus', res?.limits?.cpus, [...base, 'deploy', 'resources', 'limits', 'cpus'], cpusOf);
  if (cpus !== undefined) r.nanoCpus = cpus;
  const pids = pick('pids_limit', res?.limits?.pids, [...base, 'deploy', 'resources', 'limits', 'pids'], (v) => Number(v));
  if (pids !== undefined) r.pidsLimit = pids;
  if (raw.memswap_limit !== undefined) {
    const swap = raw.memswap_limit === -1 ? -1 : parseSize(raw.memswap_limit);
    if (swap === undefined) report([...base, 'memswap_limit'], `"${String(raw.memswap_limit)}" is not a size like 1g (or -1)`);
    else if (memory === undefined) report([...base, 'memswap_limit'], 'memswap_limit needs mem_limit (Docker refuses a swap limit without a memory limit)');
    else r.memorySwapBytes = swap;
  }
  if (raw.shm_size !== undefined) {
    const shm = parseSize(raw.shm_size);
    if (shm === undefined) report([...base, 'shm_size'], `"${String(raw.shm_size)}" is not a size like 64m`);
    else r.shmSizeBytes = shm;
  }
  if (typeof raw.cpu_shares === 'number') r.cpuShares = raw.cpu_shares;
  if (str('cpuset')) r.cpuset = str('cpuset');
  if (typeof raw.oom_score_adj === 'number') r.oomScoreAdj = raw.oom_score_adj;

  const devices = list('devices');
  if (devices) {
    r.devices = devices.map((d) => {
      const [host, container, permissions] = d.split(':') as [string, string | undefined, string | undefined];
      return { host, container: container && !/^[rwm]+$/.test(container) ? container : host, permissions: (container && /^[rwm]+$/.test(container) ? container : permissions) ?? 'rwm' };
    });
  }
  if (raw.tmpfs !== undefined) {
    const mounts = Array.isArray(raw.tmpfs) ? (raw.tmpfs as string[]) : [raw.tmpfs as string];
    r.tmpfs = Object.fromEntries(mounts.map((m) => {
      const i = m.indexOf(':');
      return i < 0 ? [m, ''] : [m.slice(0, i), m.slice(i + 1)];
    }));
  }
  for (const [key, field] of [['pid', 'pidMode'], ['ipc', 'ipcMode']] as const) {
    const mode = str(key);
    if (!mode) continue;
    if (mode.startsWith('service:')) shares.push(mode.slice('service:'.length));
    r[field] = namespace(mode, containerOf);
  }
  if (str('userns_mode')) r.usernsMode = str('userns_mode');
  const logging = raw.logging as { driver?: string; options?: Record<string, unknown> } | undefined;
  if (logging) r.logging = { driver: logging.driver ?? 'json-file', options: Object.fromEntries(Object.entries(logging.options ?? {}).map(([k, v]) => [k, String(v)])) };
  return Object.keys(r).length > 0 ? { runtime: r, shares } : { shares };
}
