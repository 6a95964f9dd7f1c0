import { posix } from 'node:path';
import { Cron } from 'croner';
import { parseDuration } from '../core/duration.js';
import type { Report } from './normalize-ports-volumes.js';
import { parseImageRef } from '../core/image-ref.js';
import type { BackupPolicy, BackupSpec, BackupTarget, CertbotJob, JobSpec, Mount, WindowSpec } from '../model/desired.js';

type Raw = Record<string, unknown>;

export const DEFAULT_RETENTION = { keep: 7 } as const;

/** `x-agent.backup` of a service: volumes resolved to the mount points of this service. */
export function normalizeBackup(raw: Raw | undefined, service: string, mounts: Mount[], declared: Record<string, string>, base: (string | number)[], report: Report): BackupSpec | undefined {
  if (!raw) return undefined;
  const targets: BackupTarget[] = [];
  ((raw.volumes as string[] | undefined) ?? []).forEach((key, i) => {
    const engineName = declared[key];
    const mount = mounts.find((m) => m.type === 'volume' && m.source === engineName);
    if (!engineName) report([...base, 'volumes', i], `volume "${key}" is not declared under the top-level "volumes:" key`);
    else if (!mount) report([...base, 'volumes', i], `volume "${key}" is not mounted by service "${service}"`);
    else targets.push({ kind: 'volume', name: key, target: mount.target });
  });
  ((raw.paths as string[] | undefined) ?? []).forEach((p, i) => {
    if (p.split('/').includes('..')) report([...base, 'paths', i], `backup path "${p}" must not contain ".."`);
    else if (posix.normalize(p) === '/') report([...base, 'paths', i], 'backing up "/" is not supported; name the directories');
    else targets.push({ kind: 'path', name: posix.normalize(p), target: posix.normalize(p) });
  });
  const pg = raw.postgres as { service?: string; database: string; user?: string } | undefined;
  const spec: BackupSpec = {
    targets,
    consistency: (raw.consistency as 'stop' | 'live' | undefined) ?? 'stop',
    restoreOnRollback: raw.restoreOnRollback === true,
  };
  if (pg) spec.postgres = { service: pg.service ?? service, database: pg.database, user: pg.user ?? 'postgres' };
  const drill = raw.drill as { query: string } | undefined;
  if (drill && !pg) report([...base, 'drill'], 'a drill query checks a restored database: it needs `postgres`');
  else if (drill) spec.drill = { query: drill.query };
  if (raw.postgres === undefined && raw.volumes === undefined && raw.paths === undefined) report(base, 'a backup needs `postgres`, `volumes` or `paths`');
  return spec;
}

function normalizeCertbot(raw: Raw, at: (string | number)[], report: Report, declared: Record<string, string>): CertbotJob | undefined {
  const image = String(raw.image);
  const ref = parseImageRef(image);
  if (!ref) {
    report([...at, 'image'], `"${image}" is not a valid image reference`);
    return undefined;
  }
  if (!ref.digest) report([...at, 'image'], `image "${image}" is not pinned by digest; the agent cannot tell a re-pushed tag from the one you reviewed`, 'warning');
  const volumes: Mount[] = [];
  ((raw.volumes as string[] | undefined) ?? []).forEach((v, i) => {
    const [source, target, mode] = v.split(':');
    // A named volume of the stack (the certificates nginx reads), or an absolute host path.
    const named = source !== undefined && !source.includes('/') ? declared[source] : undefined;
    if (named && target?.startsWith('/') && !target.split('/').includes('..')) volumes.push({ type: 'volume', source: named, target: posix.normalize(target), readOnly: mode === 'ro' });
    else if (source !== undefined && !source.includes('/') && !source.startsWith('.')) report([...at, 'volumes', i], `volume "${source}" is not declared under the top-level "volumes:" key`);
    else if (!source?.startsWith('/') || !target?.startsWith('/') || source.split('/').includes('..') || target.split('/').includes('..')) report([...at, 'volumes', i], `"${v}" must be "volume:/container/path[:ro]" or "/host/path:/container/path[:ro]" with absolute paths and no ".."`);
    else volumes.push({ type: 'bind', source: posix.normalize(source), target: posix.normalize(target), readOnly: mode === 'ro' });
  });
  const job: CertbotJob = { image, volumes, args: (raw.args as string[] | undefined) ?? ['renew', '--non-interactive'], networkMode: (raw.networkMode as 'host' | 'bridge' | undefined) ?? 'host' };
  const reload = raw.reload as { service: string; command?: string[] } | undefined;
  if (reload) job.reload = { service: reload.service, command: reload.command ?? ['nginx', '-s', 'reload'] };
  return job;
}

/** `x-agent.window` of a service. */
export function normalizeWindow(raw: Raw | undefined, at: (string | number)[], report: Report): WindowSpec | undefined {
  if (!raw) return undefined;
  const timezone = (raw.timezone as string | undefined) ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    new Cron(String(raw.schedule), { timezone, paused: true });
  } catch (err) {
    report(at, `invalid maintenance window: ${(err as Error).message}`);
    return undefined;
  }
  const durationMs = parseDuration(raw.duration as string);
  if (!durationMs) {
    report([...at, 'duration'], 'the window needs a duration longer than 0');
    return undefined;
  }
  return { schedule: String(raw.schedule), durationMs, timezone };
}

/** Top-level `x-agent.backups` and `x-agent.jobs`. */
export function normalizeStackBackups(raw: Raw | undefined, report: Report, declared: Record<string, string> = {}): { backups: BackupPolicy; jobs: Record<string, JobSpec> } {
  const retention = ((raw?.backups as Raw | undefined)?.retention as Raw | undefined) ?? {};
  const backups: BackupPolicy = { retention: { keep: (retention.keep as number | undefined) ?? DEFAULT_RETENTION.keep } };
  if (retention.maxAge !== undefined) {
    const ms = parseDuration(retention.maxAge as string);
    if (ms !== undefined) backups.retention.maxAgeMs = ms;
  }
  const jobs: Record<string, JobSpec> = {};
  for (const [name, j] of Object.entries((raw?.jobs as Record<string, Raw> | undefined) ?? {})) {
    const at = ['x-agent', 'jobs', name];
    const timezone = (j.timezone as string | undefined) ?? 'UTC';
    try {
      new Intl.DateTimeFormat('en', { timeZone: timezone });
    } catch {
      report([...at, 'timezone'], `unknown time zone "${timezone}" (use an IANA name such as Europe/Berlin)`);
      continue;
    }
    try {
      new Cron(String(j.schedule), { timezone, paused: true });
    } catch (err) {
      report([...at, 'schedule'], `invalid cron expression "${String(j.schedule)}": ${(err as Error).message}`);
      continue;
    }
    const job: JobSpec = { name, schedule: String(j.schedule), timezone, missed: (j.missed as 'run-once' | 'skip' | undefined) ?? 'skip' };
    if (j.backup) job.backup = { services: ((j.backup as Raw).services as string[] | undefined) ?? [] };
    if (j.drill) job.drill = { services: ((j.drill as Raw).services as string[] | undefined) ?? [] };
    if (j.certbot) {
      const c = normalizeCertbot(j.certbot as Raw, [...at, 'certbot'], report, declared);
      if (c) job.certbot = c;
    }
    const actions = ['backup', 'drill', 'certbot'].filter((k) => j[k] !== undefined);
    if (actions.length === 0) report(at, 'a job needs an action: `backup`, `drill` or `certbot`');
    if (actions.length > 1) report(at, `a job does one thing: ${actions.map((a) => `\`${a}\``).join(', ')} are given`);
    jobs[name] = job;
  }
  return { backups, jobs };
}
