import { posix } from 'node:path';
import { clone, isMapping, type Raw } from './compose-merge-keys.js';
import { mergeServiceDefinitions } from './compose-merge.js';
import type { MergeConflict, MergePath } from './compose-merge-rules.js';
import { fileFrom, normalProjectPath, rebaseServicePaths } from './compose-paths.js';
import { withoutResets, type MergeTag } from './compose-tags.js';

/**
 * Compose's `extends` (compose-spec 05-services.md "extends"; compose-go loader/extends.go):
 * `extends: base` or `extends: { service: base, file: common.yaml }`. The extended service is
 * resolved first (chains, from file to file), its relative paths rewritten when it lives in
 * another directory, then the extending service's own keys merged over it by the merge rules.
 *
 * Which keys are inherited: all of them. The spec's "Restrictions" only say that Compose does
 * not import what the base refers to (networks, volumes, depends_on targets, `service:x` of
 * ipc / pid / network_mode): the extending model must declare those. docker-compose v1 never
 * shared links, volumes_from and depends_on (its docs still say so for the last two); compose-go
 * dropped depends_on and volumes_from until v2.4.8 ("drop extends restrictions", January 2025),
 * after Compose 2.32 lost the depends_on of extending services (docker/compose#12402, #12423,
 * closed as fixed with depends_on inherited). `notInherited` restores such a rule when wanted;
 * by default nothing is dropped, as Compose does today.
 */

export interface ExtendsError {
  /** The service of the resolved file whose definition cannot be completed. */
  service: string;
  /** Where, from the top of that file (['services', name, 'extends', ...]). */
  path: MergePath;
  message: string;
}

export interface ExtendsInput {
  /** The file whose services are resolved: one of `files`. */
  file: string;
  /** Every Compose file that may be named, by path relative to the project directory (posix). */
  files: Readonly<Record<string, Raw>>;
  /** Each file's `!reset` / `!override` tags (mergeTagsOf), by the same paths. */
  tags?: Readonly<Record<string, readonly MergeTag[]>>;
  /** Keys a service does not take from the one it extends (none by default; e.g. ['depends_on', 'volumes_from'] for compose-go before 2025). */
  notInherited?: readonly string[];
}

export interface ExtendsResult {
  /** The file's services with `extends` resolved and removed; one whose extends fails is left out (it has an error). */
  services: Record<string, Raw>;
  /** service -> top key -> the file that set it (the extending file, or the file of the service it came from). */
  origin: Record<string, Record<string, string>>;
  errors: ExtendsError[];
}

/**
 * A resolved definition, or why not: `at` is the service whose definition failed (none for a
 * cycle, whose message names them all), `path` where in its file.
 */
type Resolved = { ok: true; def: Raw; origin: Record<string, string> } | { ok: false; message: string; at?: Ref; path?: MergePath };

interface Ref {
  file: string;
  service: string;
}

interface State {
  files: Map<string, Raw>;
  tags: Map<string, readonly MergeTag[]>;
  notInherited: readonly string[];
  memo: Map<string, Resolved>;
}

/** The services of one file with their `extends` resolved; errors as data, never thrown, cycles detected. */
export function resolveExtends(input: ExtendsInput): ExtendsResult {
  const st: State = {
    files: new Map(Object.entries(input.files).map(([p, v]) => [normalProjectPath(p), v])),
    tags: new Map(Object.entries(input.tags ?? {}).map(([p, t]) => [normalProjectPath(p), t])),
    notInherited: input.notInherited ?? [],
    memo: new Map(),
  };
  const file = normalProjectPath(input.file);
  const out: ExtendsResult = { services: {}, origin: {}, errors: [] };
  for (const [name, def] of Object.entries(servicesOf(st.files.get(file)))) {
    if (!isMapping(def)) {
      out.services[name] = def as Raw; // not a mapping: schema validation reports it
      continue;
    }
    const r = resolve({ file, service: name }, [], st);
    if (r.ok) {
      out.services[name] = r.def;
      out.origin[name] = r.origin;
    } else {
      out.errors.push(failure(name, file, r));
    }
  }
  return out;
}

/** A failure as the error of a service of the resolved file: at its `extends`, naming the service further down the chain that failed. */
function failure(service: string, file: string, r: Extract<Resolved, { ok: false }>): ExtendsError {
  const here = r.at !== undefined && r.at.file === file && r.at.service === service;
  const path: MergePath = here && r.path ? r.path : ['services', service, 'extends'];
  const where = r.at === undefined || here ? '' : `"${r.at.service}" in ${r.at.file}: `;
  return { service, path, message: `extends: ${where}${r.message}` };
}

function servicesOf(value: Raw | undefined): Raw {
  return isMapping(value?.services) ? value.services : {};
}

function id(ref: Ref): string {
  return `${ref.file}\u0000${ref.service}`;
}

function resolve(ref: Ref, chain: readonly Ref[], st: State): Resolved {
  const cached = st.memo.get(id(ref));
  if (cached) return cached;
  const r = chain.some((c) => id(c) === id(ref)) ? cycle([...chain, ref]) : resolveOnce(ref, chain, st);
  st.memo.set(id(ref), r);
  return r;
}

function resolveOnce(ref: Ref, chain: readonly Ref[], st: State): Resolved {
  const def = servicesOf(st.files.get(ref.file))[ref.service] as Raw;
  if (!('extends' in def)) {
    // Its own `!reset` values are not part of it (they only remove what came before).
    const own = withoutResets(def, st.tags.get(ref.file) ?? [], ['services', ref.service]);
    return { ok: true, def: clone(own), origin: Object.fromEntries(Object.keys(own).map((k) => [k, ref.file])) };
  }
  const at: MergePath = ['services', ref.service, 'extends'];
  const fail = (message: string, sub?: 'file' | 'service'): Resolved => ({ ok: false, message, at: ref, path: sub ? [...at, sub] : at });
  const parsed = parseExtends(def.extends);
  if ('error' in parsed) return fail(parsed.error);
  let baseFile = ref.file;
  if (parsed.file !== undefined) {
    const found = fileFrom(ref.file, parsed.file);
    if ('error' in found) return fail(found.error, 'file');
    if (!st.files.has(found.path)) return fail(`file "${parsed.file}" (${found.path}) is not among the desired-state files`, 'file');
    baseFile = found.path;
  }
  if (!isMapping(servicesOf(st.files.get(baseFile))[parsed.service])) {
    return fail(`service "${parsed.service}" is not defined in ${baseFile}`, isMapping(def.extends) ? 'service' : undefined);
  }
  const base = resolve({ file: baseFile, service: parsed.service }, [...chain, ref], st);
  return base.ok ? extendWith(ref, baseFile, base, def, st) : base;
}

/** The extending definition merged over its resolved base (paths rebased, not-inherited keys dropped). */
function extendWith(ref: Ref, baseFile: string, base: { def: Raw; origin: Record<string, string> }, def: Raw, st: State): Resolved {
  const from = posix.dirname(baseFile);
  const to = posix.dirname(ref.file);
  const inherited = rebaseServicePaths(base.def, from, to);
  const origin = { ...base.origin };
  for (const k of st.notInherited) {
    delete inherited[k];
    delete origin[k];
  }
  const own: Raw = { ...def };
  delete own.extends;
  const conflicts: MergeConflict[] = [];
  const merged = mergeServiceDefinitions(inherited, own, {
    service: ref.service,
    tags: st.tags.get(ref.file) ?? [],
    conflicts,
    labels: { base: `the extended service (${baseFile})`, override: `"${ref.service}" (${ref.file})` },
  });
  // compose-go refuses the merge ("cannot override"): the service is not defined.
  const [conflict] = conflicts;
  if (conflict) return { ok: false, message: conflict.message, at: ref, path: conflict.path };
  for (const k of Object.keys(own)) origin[k] = ref.file;
  for (const k of Object.keys(origin)) if (!(k in merged)) delete origin[k];
  return { ok: true, def: merged, origin };
}

/** `extends: name` or `extends: { service: name, file?: path }`. */
function parseExtends(v: unknown): { service: string; file?: string } | { error: string } {
  if (typeof v === 'string' && v !== '') return { service: v };
  if (!isMapping(v)) return { error: 'write the name of the service to extend, or { service: name, file: path }' };
  if (typeof v.service !== 'string' || v.service === '') return { error: '`service` is required: the name of the service to extend' };
  if (v.file !== undefined && typeof v.file !== 'string') return { error: '`file` must be the path of a Compose file' };
  return v.file === undefined ? { service: v.service } : { service: v.service, file: v.file };
}

function cycle(refs: readonly Ref[]): Resolved {
  const [first, ...rest] = refs;
  const steps = [`"${first?.service}" (${first?.file})`, ...rest.map((r) => `extends "${r.service}" (${r.file})`)];
  return { ok: false, message: `circular reference: ${steps.join(' ')}` };
}
