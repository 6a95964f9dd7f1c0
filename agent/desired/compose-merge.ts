import { isMapping, type Raw } from './compose-merge-keys.js';
import { mergeMappings, type MergeConflict, type MergeContext } from './compose-merge-rules.js';
import { withoutResets, withoutTagged, type MergeTag } from './compose-tags.js';

/**
 * Compose's rules for combining Compose files (compose-spec 13-merge.md; compose-go's
 * `override` package where the spec is vague). Pure: values in, values out, no file system.
 *
 * How a loader uses the compose-* modules, in compose-go's order, for each file given (-f, or
 * compose.yaml then compose.override.yaml):
 * 1. parse; mergeTagsOf(doc) for its `!reset`/`!override` tags (compose-tags.ts);
 * 2. its `include:` (compose-include.ts): each included model loaded the same way, its paths
 *    rebased, conflicts refused, its resources imported into the file;
 * 3. its services' `extends` (compose-extends.ts), against that file alone plus the files named;
 * 4. then mergeComposeFiles() over the files in order.
 * So an override file changes what compose.yaml included or extended, not what it extends from.
 *
 * The merge works on raw values (after YAML parsing and interpolation, before normalisation),
 * never mutates them, and returns values that share no node with them. A `KEY=VAL` list merged
 * with anything comes out as a mapping (see keyValueMap); a value only one file sets keeps its
 * form.
 */

export type { Raw } from './compose-merge-keys.js';
export type { MergeConflict, MergePath } from './compose-merge-rules.js';

/** Options of mergeServiceDefinitions. */
export interface ServiceMergeOptions {
  /** The service's name, in conflict paths (['services', name, ...]) and to find its tags; "service" by default. */
  service?: string;
  /** The tags of the overriding definition's file (paths from the top of that file, see mergeTagsOf). */
  tags?: readonly MergeTag[];
  /** Receives the values that could not be merged (a mapping or list overridden by another shape). */
  conflicts?: MergeConflict[];
  /** How the two sides are named in conflict messages. */
  labels?: { base: string; override: string };
}

/** One service's raw definition with `override` merged over `base`, key by key, by Compose's rules. */
export function mergeServiceDefinitions(base: Raw, override: Raw, options: ServiceMergeOptions = {}): Raw {
  const root = ['services', options.service ?? 'service'];
  const tags = options.tags ?? [];
  const ctx: MergeContext = {
    conflicts: options.conflicts ?? [],
    baseLabel: () => options.labels?.base ?? 'the base definition',
    overLabel: options.labels?.override ?? 'the overriding definition',
  };
  return mergeMappings(withoutTagged(base, tags, root), withoutResets(override, tags, root), root, ctx);
}

export const RESOURCE_KINDS = ['volumes', 'networks', 'secrets', 'configs', 'models'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

/** One file for mergeComposeFiles. */
export interface ComposeFileValue {
  /** The file's path (what origins name). */
  path: string;
  /** Its raw value (the top-level mapping). */
  value: Raw;
  /** Its `!reset` / `!override` tags (mergeTagsOf). */
  tags?: readonly MergeTag[];
  /** For keys a service of this file took from elsewhere (resolveExtends' origin): service -> key -> file. */
  serviceOrigin?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * Which file each part of the merged model came from, to report an error at the file:line
 * that set it. A key several files set (merged) names the last of them: the one a person
 * edits to change the result.
 */
export interface ComposeOrigin {
  /** service -> top key of the service -> the last file that set it. */
  services: Record<string, Record<string, string>>;
  /** service -> the first file that defined it. */
  serviceFile: Record<string, string>;
  /** volumes / networks / secrets / configs / models -> name -> the last file that set it. */
  resources: Record<ResourceKind, Record<string, string>>;
  /** Other top-level keys (`name`, `x-*`, ...) -> the last file that set it. */
  top: Record<string, string>;
}

export interface MergedCompose {
  value: Raw;
  origin: ComposeOrigin;
  /** Values that could not be merged; each is an error of the later file (origin of its path). */
  conflicts: (MergeConflict & { file: string })[];
}

/**
 * Files merged in order, each over what the earlier ones made: services by Compose's per-key
 * rules (mergeServiceDefinitions), top-level volumes / networks / secrets / configs / models
 * and `x-*` as mappings, `name` (a scalar) the last one's.
 */
export function mergeComposeFiles(files: readonly ComposeFileValue[]): MergedCompose {
  let value: Raw = {};
  const origin = emptyOrigin();
  const conflicts: MergedCompose['conflicts'] = [];
  for (const file of files) {
    const tags = file.tags ?? [];
    const found: MergeConflict[] = [];
    const ctx: MergeContext = { conflicts: found, baseLabel: (p) => originOf(origin, p) ?? 'an earlier file', overLabel: file.path };
    value = mergeMappings(withoutTagged(value, tags), withoutResets(file.value, tags), [], ctx);
    conflicts.push(...found.map((c) => ({ ...c, file: file.path })));
    forgetTagged(origin, tags);
    recordOrigins(origin, withoutResets(file.value, tags), file);
  }
  pruneOrigins(origin, value);
  return { value, origin, conflicts };
}

/** The file that set the value at `path` of the merged model (for a path inside a service key, the file of that key). */
export function originOf(origin: ComposeOrigin, path: readonly (string | number)[]): string | undefined {
  const [top, name, key] = path.map(String);
  if (top === undefined) return undefined;
  if (top === 'services' && name !== undefined) return (key === undefined ? undefined : origin.services[name]?.[key]) ?? origin.serviceFile[name];
  if ((RESOURCE_KINDS as readonly string[]).includes(top) && name !== undefined) return origin.resources[top as ResourceKind][name] ?? origin.top[top];
  return origin.top[top];
}

function emptyOrigin(): ComposeOrigin {
  return { services: {}, serviceFile: {}, resources: { volumes: {}, networks: {}, secrets: {}, configs: {}, models: {} }, top: {} };
}

function recordOrigins(origin: ComposeOrigin, own: Raw, file: ComposeFileValue): void {
  for (const [top, v] of Object.entries(own)) {
    origin.top[top] = file.path;
    if (top === 'services' && isMapping(v)) {
      for (const [name, def] of Object.entries(v)) {
        origin.serviceFile[name] ??= file.path;
        const keys = (origin.services[name] ??= {});
        if (isMapping(def)) for (const k of Object.keys(def)) keys[k] = file.serviceOrigin?.[name]?.[k] ?? file.path;
      }
    } else if ((RESOURCE_KINDS as readonly string[]).includes(top) && isMapping(v)) {
      for (const name of Object.keys(v)) origin.resources[top as ResourceKind][name] = file.path;
    }
  }
}

/** A service or resource a file tags `!reset`/`!override` as a whole starts its origins afresh (`services: { app: !override {...} }`). */
function forgetTagged(origin: ComposeOrigin, tags: readonly MergeTag[]): void {
  for (const { path } of tags) {
    const [top, name, key] = path.map(String);
    if (name === undefined) continue;
    if (top === 'services' && key === undefined) {
      delete origin.services[name];
      delete origin.serviceFile[name];
    } else if (top === 'services' && key !== undefined && path.length === 3) {
      delete origin.services[name]?.[key];
    } else if ((RESOURCE_KINDS as readonly string[]).includes(top as string) && path.length === 2) {
      delete origin.resources[top as ResourceKind][name];
    }
  }
}

/** Origins of what a later `!reset` removed are dropped: only what the merged model holds has one. */
function pruneOrigins(origin: ComposeOrigin, value: Raw): void {
  const services = isMapping(value.services) ? value.services : {};
  for (const name of Object.keys(origin.services)) {
    const def = services[name];
    if (def === undefined) {
      delete origin.services[name];
      delete origin.serviceFile[name];
      continue;
    }
    const keys = origin.services[name] ?? {};
    for (const k of Object.keys(keys)) if (!isMapping(def) || !(k in def)) delete keys[k];
  }
  for (const kind of RESOURCE_KINDS) {
    const defs = isMapping(value[kind]) ? (value[kind] as Raw) : {};
    for (const name of Object.keys(origin.resources[kind])) if (!(name in defs)) delete origin.resources[kind][name];
  }
  for (const top of Object.keys(origin.top)) if (!(top in value)) delete origin.top[top];
}
