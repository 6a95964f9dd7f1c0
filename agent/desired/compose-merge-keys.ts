import { posix } from 'node:path';

/**
 * Conversions and unique keys the Compose merge needs: the list and mapping forms of one key
 * brought to one form, and the identity of an entry of a "unique resource" sequence. Pure
 * functions of raw YAML values (after parsing, before normalisation); they never fail: a value
 * of an unexpected shape gets a key of its own, so it is kept and schema validation reports it.
 */

export type Raw = Record<string, unknown>;

/** A YAML mapping (not null, not a list). */
export function isMapping(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A deep copy of a parsed YAML value, so that merged results never share nodes with inputs. */
export function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (isMapping(v)) return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, clone(e)])) as T;
  return v;
}

/** Structural equality of two parsed YAML values (key order of mappings ignored). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((e, i) => sameValue(e, b[i]));
  }
  if (isMapping(a) || isMapping(b)) {
    if (!isMapping(a) || !isMapping(b)) return false;
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && sameValue(a[k], b[k]));
  }
  return a === b;
}

/** A stable text for any value, used as the key of entries that have no better one. */
function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * `KEY=VAL` list or mapping (environment, labels, annotations, sysctls, build.args, ...) as a
 * mapping. `KEY` alone becomes `KEY: null`, which is what the mapping form means by a key
 * without a value (environment: passed through from the shell). compose-go goes the other way
 * (everything to a sorted `KEY=VAL` list); a mapping keeps numbers and booleans as written and
 * is what the rest of the loader reads most easily.
 */
export function keyValueMap(v: unknown): Raw {
  if (isMapping(v)) return clone(v);
  const out: Raw = {};
  for (const item of Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]) {
    const s = String(item);
    const eq = s.indexOf('=');
    out[eq < 0 ? s : s.slice(0, eq)] = eq < 0 ? null : s.slice(eq + 1);
  }
  return out;
}

/**
 * extra_hosts as `host: ip` or `host: [ip, ...]`. The list form is `host=ip` or, older,
 * `host:ip` (split at the first `=` if any, else at the first `:`, so `h:::1` is h -> ::1).
 * The same host listed twice in one list keeps both addresses, as Compose does.
 */
export function hostsMap(v: unknown): Raw {
  if (isMapping(v)) return clone(v);
  const grouped = new Map<string, string[]>();
  for (const item of Array.isArray(v) ? v : []) {
    const s = String(item);
    const at = s.includes('=') ? s.indexOf('=') : s.indexOf(':');
    const host = at < 0 ? s : s.slice(0, at);
    grouped.set(host, [...(grouped.get(host) ?? []), at < 0 ? '' : s.slice(at + 1)]);
  }
  return Object.fromEntries([...grouped].map(([h, ips]) => [h, ips.length === 1 ? ips[0] : ips]));
}

/** networks / models / depends_on given as a list of names: a mapping of each name to `fill`. */
export function namedMap(v: unknown, fill: () => unknown): Raw {
  if (isMapping(v)) return clone(v);
  return Object.fromEntries((Array.isArray(v) ? v : []).map((name) => [String(name), fill()]));
}

/** What a `depends_on` list entry means in the long form (compose-go fills the same). */
export const DEPENDS_ON_DEFAULT = (): Raw => ({ condition: 'service_started', required: true });

/** `build: ./dir` is `build: { context: ./dir }`. */
export function buildMap(v: unknown): Raw {
  return isMapping(v) ? clone(v) : { context: v };
}

/** A string_or_list key (dns, dns_search, tmpfs, env_file, label_file) as a list. */
export function asList(v: unknown): unknown[] {
  if (Array.isArray(v)) return clone(v);
  return v === undefined || v === null ? [] : [clone(v)];
}

/** Identity of a list entry: itself (cap_add, security_opt, dns, profiles, aliases...). */
export function valueKey(v: unknown): string {
  return text(v);
}

/**
 * Identity of a published port: host IP, published port, container port, protocol, whatever
 * the syntax (`"127.0.0.1:8080:80/udp"`, `80`, or the long form), so that a short and a long
 * form of the same binding are one entry. compose-go compares short forms as written before
 * canonicalising (then again after): this is the second comparison done at once. A missing host
 * IP is kept apart from `0.0.0.0` (Docker binds IPv6 too when none is given). Ranges are compared
 * as written, not expanded.
 */
export function portKey(v: unknown): string {
  if (typeof v === 'number') return `||${v}|tcp`;
  if (typeof v === 'string') {
    const slash = v.lastIndexOf('/');
    const protocol = slash < 0 ? 'tcp' : v.slice(slash + 1).toLowerCase();
    const parts = (slash < 0 ? v : v.slice(0, slash)).split(':');
    const target = parts.pop() ?? '';
    const published = parts.pop() ?? '';
    const hostIp = parts.join(':').replace(/^\[|\]$/g, '');
    return `${hostIp}|${published}|${target}|${protocol}`;
  }
  if (isMapping(v) && v.target !== undefined) {
    return `${String(v.host_ip ?? '')}|${String(v.published ?? '')}|${String(v.target)}|${String(v.protocol ?? 'tcp').toLowerCase()}`;
  }
  return `?${text(v)}`;
}

/** A container path compared without its trailing slash or `./` noise. */
function containerPath(p: string): string {
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/**
 * Identity of a volume: its container path (`src:/target[:mode]`, `/target` alone for an
 * anonymous volume, or `target:` of the long form): one mount per path, the override's wins.
 */
export function mountTargetKey(v: unknown): string {
  if (typeof v === 'string') {
    const parts = v.split(':');
    return containerPath((parts.length === 1 ? parts[0] : parts[1]) ?? v);
  }
  if (isMapping(v) && typeof v.target === 'string') return containerPath(v.target);
  return `?${text(v)}`;
}

/** Identity of a device: its path in the container (`/dev/a:/dev/b[:rwm]` is /dev/b; one path is both). */
export function deviceTargetKey(v: unknown): string {
  if (typeof v === 'string') {
    const parts = v.split(':');
    return (parts.length === 1 ? parts[0] : parts[1]) ?? v;
  }
  if (isMapping(v)) return String(v.target ?? v.source);
  return `?${text(v)}`;
}

/**
 * Identity of a tmpfs entry: its mount path (`/run:size=64m` is /run). compose-go cuts at `=`
 * like an environment entry (so `/run:size` for this example), which only matches identical
 * options; comparing the mount point is what makes two entries the same mount.
 */
export function tmpfsKey(v: unknown): string {
  return typeof v === 'string' ? containerPath(v.split(':')[0] ?? v) : `?${text(v)}`;
}

/**
 * Identity of a secret or config grant: where it is mounted. A secret without `target` goes
 * to /run/secrets/<source>, a config to /<source>; a relative target is under the same place
 * (the spec says so for secrets; for configs it is how the engine resolves it).
 */
export function grantKey(defaultDir: string): (v: unknown) => string {
  return (v) => {
    if (typeof v === 'string') return posix.join(defaultDir, v);
    if (!isMapping(v)) return `?${text(v)}`;
    const target = typeof v.target === 'string' ? v.target : String(v.source);
    return posix.isAbsolute(target) ? containerPath(target) : posix.join(defaultDir, target);
  };
}

/** Identity of an env_file entry: its path (a string, or `path:` of the long form). */
export function envFileKey(v: unknown): string {
  if (typeof v === 'string') return posix.normalize(v);
  if (isMapping(v) && typeof v.path === 'string') return posix.normalize(v.path);
  return `?${text(v)}`;
}

/** Identity of a blkio_config device limit: the device path (the spec treats these as a mapping by path). */
export function blkioKey(v: unknown): string {
  return isMapping(v) && typeof v.path === 'string' ? v.path : `?${text(v)}`;
}

/** Identity of a network IPAM pool: its subnet (compose-go merges pools of the same subnet). */
export function subnetKey(v: unknown): string {
  return isMapping(v) && typeof v.subnet === 'string' ? v.subnet : `?${text(v)}`;
}
