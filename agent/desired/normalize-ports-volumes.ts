import { posix } from 'node:path';
import { sha256Hex } from '../core/canonical.js';
import type { Mount, PortBinding, ProjectMount } from '../model/desired.js';
import { dataPath, lookupProject, materialisedPath, projectPath, type ProjectIndex, type ProjectRoots } from './project-files.js';

export type Report = (path: (string | number)[], message: string, severity?: 'error' | 'warning') => void;

const PORT_STRING = /^(?:(?:(\[[0-9a-fA-F:]+\]|[0-9.]+):)?(\d{1,5}(?:-\d{1,5})?)?:)?(\d{1,5}(?:-\d{1,5})?)(?:\/(tcp|udp))?$/;

/** `8000-8002` as [8000, 8002]; a single port as [p, p]. */
function range(text: string): [number, number] {
  const [a, b] = text.split('-').map(Number) as [number, number | undefined];
  return [a, b ?? a];
}

/** Compose short and long port syntax, ranges (`8000-8002:9000-9002`) expanded into one binding per port. */
export function normalizePorts(raw: unknown[] | undefined, base: (string | number)[], report: Report): PortBinding[] {
  const out: PortBinding[] = [];
  (raw ?? []).forEach((item, i) => {
    const path = [...base, i];
    if (typeof item === 'number') {
      out.push({ hostIp: '', hostPort: 0, containerPort: item, protocol: 'tcp' });
      return;
    }
    if (typeof item === 'string') {
      const m = PORT_STRING.exec(item);
      if (!m) return report(path, `"${item}" is not a port mapping like "127.0.0.1:8080:80/tcp"`);
      const [c0, c1] = range(m[3] as string);
      const host = m[2] === undefined ? undefined : range(m[2]);
      if (c1 < c0 || (host && host[1] < host[0])) return report(path, `"${item}": a range goes from the lower port to the higher`);
      if (host && host[1] - host[0] !== c1 - c0) {
        return report(path, host[1] - host[0] > 0 && c0 === c1 ? `not supported: a host port range for one container port ("${item}"): the agent publishes fixed ports; pick one` : `"${item}": the host and container ranges have different lengths`);
      }
      if ((host?.[1] ?? 0) > 65535 || c0 < 1 || c1 > 65535) return report(path, `port out of range in "${item}"`);
      const hostIp = (m[1] ?? '').replace(/^\[|\]$/g, '');
      const protocol = (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp';
      for (let i = 0; i <= c1 - c0; i++) out.push({ hostIp, hostPort: host ? host[0] + i : 0, containerPort: c0 + i, protocol });
      return;
    }
    const o = item as { target: number; published?: number | string; host_ip?: string; protocol?: 'tcp' | 'udp'; mode?: 'host' | 'ingress' };
    if (o.mode === 'ingress') return report([...path, 'mode'], 'not supported: mode: ingress is Swarm\'s routing mesh; on one host a port is published in host mode (leave mode out, or write mode: host)');
    const published = o.published === undefined ? 0 : Number(o.published);
    if (!Number.isInteger(published) || published < 0 || published > 65535) return report([...path, 'published'], `published port must be a number from 1 to 65535`);
    out.push({ hostIp: o.host_ip ?? '', hostPort: published, containerPort: o.target, protocol: o.protocol ?? 'tcp' });
  });
  return out;
}

export interface NormalizeScope {
  stack: string;
  /** The project directory's files, for relative paths, and where their copies go. */
  project: ProjectIndex;
  roots: ProjectRoots;
  /** The container name of a service of the stack (`container_name`, or Compose's default). */
  containerOf: (service: string) => string;
  /** Top-level volume key -> engine name. */
  declared: Record<string, string>;
}

/**
 * Compose short and long volume syntax. A relative bind is resolved against the project
 * directory, as Compose does: a file or folder of the repository is bound from its immutable
 * copy (a new content, a new copy, an update); a path the repository does not hold is a data
 * directory of the stack. Refused on purpose: paths leaving the directory, and anonymous
 * volumes, whose data would be lost when the container is recreated by an update.
 */
export function normalizeVolumes(raw: unknown[] | undefined, base: (string | number)[], ctx: NormalizeScope, report: Report): Mount[] {
  const out: Mount[] = [];
  (raw ?? []).forEach((item, i) => {
    const path = [...base, i];
    let type: 'volume' | 'bind' | undefined;
    let source: string | undefined;
    let target: string;
    let readOnly = false;
    let noCopy = false;
    if (typeof item === 'string') {
      const parts = item.split(':');
      if (parts.length === 1) {
        const m = anonymousVolume(item, path, ctx, report);
        if (m) out.push(m);
        return;
      }
      if (parts.length > 3) return report(path, `"${item}" is not a volume like "name:/path" or "/host/path:/path:ro"`);
      source = parts[0] as string;
      target = parts[1] as string;
      const mode = parts[2];
      if (mode !== undefined) {
        const flags = mode.split(',');
        if (flags.some((f) => f === 'z' || f === 'Z')) return report(path, `not supported: the :${flags.find((f) => f === 'z' || f === 'Z')} flag (SELinux relabelling): the agent mounts through Docker's Mounts API, which has no relabel option; relabel the host path yourself (chcon -Rt container_file_t)`);
        if (flags.some((f) => !['ro', 'rw'].includes(f))) return report(path, `unknown volume mode "${mode}" (use ro or rw)`);
        readOnly = flags.includes('ro');
      }
      type = isPathLike(source) ? 'bind' : 'volume';
    } else {
      const o = item as { type: 'volume' | 'bind'; source?: string; target: string; read_only?: boolean; volume?: { nocopy?: boolean }; bind?: { create_host_path?: boolean } };
      type = o.type;
      source = o.source;
      target = o.target;
      readOnly = o.read_only ?? false;
      if (o.bind?.create_host_path === true) return report([...path, 'bind', 'create_host_path'], 'not supported: create_host_path: the agent does not create directories on the host (it may run in a container); create the path, then bind it');
      if (o.volume && type !== 'volume') return report([...path, 'volume'], '`volume:` options apply to type: volume only');
      if (o.volume?.nocopy) noCopy = true;
      if (!source) {
        if (type !== 'volume') return report(path, `a ${type} mount needs a source`);
        const m = anonymousVolume(target, path, ctx, report, readOnly, noCopy);
        if (m) out.push(m);
        return;
      }
    }
    if (!posix.isAbsolute(target)) return report(path, `container path "${target}" must be absolute`);
    if (hasDotDot(target)) return report(path, `container path "${target}" must not contain ".."`);
    if (type === 'bind') {
      if (!posix.isAbsolute(source)) {
        const m = projectBind(source, ctx);
        if ('error' in m) return report(path, m.error);
        // A copy of the repository is replaced by the next change: what a container wrote there
        // would be lost. Read-only, so that such a write fails at once instead.
        if (m.project && !readOnly) report(path, `"${source}" is a ${m.project.kind === 'dir' ? 'folder' : 'file'} of the repository: bound read-only from its copy (a new copy comes with each change, so writes there would be lost); write :ro, and keep what the service writes in a named volume or a path the repository does not hold`, 'warning');
        out.push({ ...m, target: posix.normalize(target), readOnly: readOnly || m.project !== undefined });
        return;
      }
      if (hasDotDot(source)) return report(path, `bind mount source "${source}" must not contain ".."`);
      out.push({ type, source: posix.normalize(source), target: posix.normalize(target), readOnly });
      return;
    }
    const engineName = ctx.declared[source];
    if (engineName === undefined) return report(path, `volume "${source}" is not declared under the top-level "volumes:" key`);
    out.push({ type, source: engineName, target: posix.normalize(target), readOnly, ...(noCopy ? { noCopy: true } : {}) });
  });
  return out;
}

/**
 * An anonymous volume (`- /data`): Compose keeps it when it recreates the container. The agent
 * gives it a stable name, `<stack>_<service>_<digest of the path>`, so it is kept across every
 * update and rollback (and its data is never in a container-only layer).
 */
function anonymousVolume(target: string, path: (string | number)[], ctx: NormalizeScope, report: Report, readOnly = false, noCopy = false): Mount | undefined {
  if (!posix.isAbsolute(target)) {
    report(path, `container path "${target}" must be absolute`);
    return undefined;
  }
  const normalized = posix.normalize(target);
  const service = String(path[1]);
  return { type: 'volume', source: `${ctx.stack}_${service}_${sha256Hex(normalized).slice(0, 12)}`, target: normalized, readOnly, ...(noCopy ? { noCopy: true } : {}) };
}

/** A relative bind: the repository's copy of a file or folder, or a data directory of the stack. */
function projectBind(raw: string, ctx: NormalizeScope): { type: 'bind'; source: string; project?: ProjectMount; dataDir?: true } | { error: string } {
  const rel = projectPath(raw);
  if ('error' in rel) return rel;
  const ref = lookupProject(ctx.project, rel.path);
  if ('error' in ref) return ref;
  if (ref.kind === 'missing') return { type: 'bind', source: dataPath(ctx.roots, ctx.stack, rel.path), dataDir: true };
  const project: ProjectMount = { path: rel.path, kind: ref.kind, digest: ref.digest };
  return { type: 'bind', source: materialisedPath(ctx.roots, project), project };
}

function isPathLike(s: string): boolean {
  return s.startsWith('/') || s.startsWith('.') || s.startsWith('~');
}

function hasDotDot(p: string): boolean {
  return p.split('/').includes('..');
}
