import { posix } from 'node:path';
import { clone, isMapping, keyValueMap, type Raw } from './compose-merge-keys.js';

/**
 * Paths of `extends.file` and `include`, and the relative paths of a service or a file brought
 * from another directory. All paths are relative to the project (desired-state) directory,
 * posix, normalised: `common/base.yaml`, never `./common/base.yaml` or an absolute path.
 */

/** A project path written without `./` or a trailing slash (`.` for the directory itself). */
export function normalProjectPath(p: string): string {
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/**
 * The file `ref` names, written in `fromFile` (relative to that file's directory, as Compose
 * resolves extends and include). Refused: absolute and home paths, remote resources, and paths
 * leaving the project directory: the agent reads only the repository's files.
 */
export function fileFrom(fromFile: string, ref: string): { path: string } | { error: string } {
  if (ref.trim() === '') return { error: 'the file path is empty' };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || ref.startsWith('git@')) {
    return { error: `not supported: "${ref}" is a remote Compose file; the agent reads the repository's files only: commit the file and name it by a relative path` };
  }
  if (ref === '~' || ref.startsWith('~/')) return { error: `not supported: "${ref}" is in a home directory: name a file of the repository by a relative path` };
  if (posix.isAbsolute(ref) || /^[A-Za-z]:[\\/]/.test(ref)) return { error: `"${ref}" is an absolute path: name a file of the repository, relative to the directory of ${fromFile}` };
  const path = normalProjectPath(posix.join(posix.dirname(fromFile), ref));
  if (path === '..' || path.startsWith('../')) return { error: `"${ref}" (from ${fromFile}) leaves the desired-state directory: the agent reads only what the repository holds there` };
  return { path };
}

/** Git and HTTP build contexts, and builder context types (`docker-image://`, `service:`): not paths (compose-go's list). */
function isRemoteContext(v: string): boolean {
  return v.includes('://') || v.startsWith('service:') || ['github.com/', 'git@'].some((p) => v.startsWith(p));
}

function isRelative(p: string): boolean {
  return !posix.isAbsolute(p) && p !== '~' && !p.startsWith('~/');
}

/** `p`, relative to `fromDir`, written relative to `toDir` (`./x` or `../x`, as a person would). */
export function rebasePath(p: string, fromDir: string, toDir: string): string {
  if (!isRelative(p) || fromDir === toDir) return p;
  // Relative to the project, `..` kept (never clamped at its root): a path that leaves it stays
  // one, for the loader to refuse.
  const target = posix.normalize(posix.join(fromDir, p)).split('/').filter((s) => s !== '.' && s !== '');
  const base = posix.normalize(toDir).split('/').filter((s) => s !== '.' && s !== '');
  let common = 0;
  while (common < base.length && common < target.length && base[common] === target[common] && base[common] !== '..') common++;
  const rel = [...base.slice(common).map(() => '..'), ...target.slice(common)].join('/');
  if (rel === '') return '.';
  return rel === '..' || rel.startsWith('../') ? rel : `./${rel}`;
}

type Rebase = (p: string) => string;

/**
 * A service definition written in a file of `fromDir`, its relative paths rewritten for a file
 * of `toDir` (compose-go resolves them against the extended file's directory): the build
 * context (`.` when not written), additional contexts, env_file, label_file, relative bind
 * sources (`./x:/y` and `type: bind`), extends.file and develop.watch paths. Nothing else in a
 * service is a host path. A path rewritten out of the project is left for the loader to refuse.
 */
export function rebaseServicePaths(service: Raw, fromDir: string, toDir: string): Raw {
  if (fromDir === toDir) return clone(service);
  const move: Rebase = (p) => rebasePath(p, fromDir, toDir);
  const out = clone(service);
  if ('build' in out) out.build = rebaseBuild(out.build, move);
  if ('env_file' in out) out.env_file = mapStringOrList(out.env_file, (e) => (isMapping(e) && typeof e.path === 'string' ? { ...e, path: move(e.path) } : e), move);
  if ('label_file' in out) out.label_file = mapStringOrList(out.label_file, (e) => e, move);
  if (Array.isArray(out.volumes)) out.volumes = out.volumes.map((v) => rebaseVolume(v, move));
  if (isMapping(out.extends) && typeof out.extends.file === 'string') out.extends = { ...out.extends, file: move(out.extends.file) };
  if (isMapping(out.develop) && Array.isArray(out.develop.watch)) {
    out.develop = { ...out.develop, watch: out.develop.watch.map((w) => (isMapping(w) && typeof w.path === 'string' ? { ...w, path: move(w.path) } : w)) };
  }
  return out;
}

/**
 * A whole Compose file of `fromDir` (an included one) with its relative paths rewritten for
 * `toDir`: every service's, and `file:` of secrets and configs, and the device of a local
 * volume bound to a host directory (`driver_opts: { o: bind, device: ./x }`).
 */
export function rebaseFilePaths(value: Raw, fromDir: string, toDir: string): Raw {
  if (fromDir === toDir) return clone(value);
  const move: Rebase = (p) => rebasePath(p, fromDir, toDir);
  const out = clone(value);
  if (isMapping(out.services)) {
    out.services = Object.fromEntries(Object.entries(out.services).map(([n, s]) => [n, isMapping(s) ? rebaseServicePaths(s, fromDir, toDir) : s]));
  }
  for (const kind of ['secrets', 'configs'] as const) {
    const defs = out[kind];
    if (!isMapping(defs)) continue;
    out[kind] = Object.fromEntries(Object.entries(defs).map(([n, d]) => [n, isMapping(d) && typeof d.file === 'string' ? { ...d, file: move(d.file) } : d]));
  }
  if (isMapping(out.volumes)) {
    out.volumes = Object.fromEntries(Object.entries(out.volumes).map(([n, d]) => [n, rebaseVolumeDevice(d, move)]));
  }
  return out;
}

function rebaseBuild(build: unknown, move: Rebase): unknown {
  if (typeof build === 'string') return isRemoteContext(build) ? build : move(build);
  if (!isMapping(build)) return build;
  const out: Raw = { ...build };
  const context = typeof build.context === 'string' ? build.context : '.';
  out.context = isRemoteContext(context) ? context : move(context);
  if (build.additional_contexts !== undefined) {
    const ctxs = keyValueMap(build.additional_contexts);
    out.additional_contexts = Object.fromEntries(Object.entries(ctxs).map(([k, v]) => [k, typeof v === 'string' && !isRemoteContext(v) ? move(v) : v]));
  }
  return out;
}

function mapStringOrList(v: unknown, onEntry: (e: unknown) => unknown, move: Rebase): unknown {
  const one = (e: unknown): unknown => (typeof e === 'string' ? move(e) : onEntry(e));
  return Array.isArray(v) ? v.map(one) : one(v);
}

/** A bind's source rebased: `./x:/y[:ro]` (a source starting with `.`; others are absolute or named volumes), or `type: bind`. */
function rebaseVolume(v: unknown, move: Rebase): unknown {
  if (typeof v === 'string') {
    const colon = v.indexOf(':');
    return colon > 0 && v.startsWith('.') ? move(v.slice(0, colon)) + v.slice(colon) : v;
  }
  if (isMapping(v) && v.type === 'bind' && typeof v.source === 'string') return { ...v, source: move(v.source) };
  return v;
}

function rebaseVolumeDevice(d: unknown, move: Rebase): unknown {
  if (!isMapping(d) || !isMapping(d.driver_opts) || (d.driver !== undefined && d.driver !== 'local')) return d;
  const opts = d.driver_opts;
  if (opts.o !== 'bind' || typeof opts.device !== 'string') return d;
  return { ...d, driver_opts: { ...opts, device: move(opts.device) } };
}
