import { posix } from 'node:path';
import { clone, isMapping, sameValue, type Raw } from './compose-merge-keys.js';
import { RESOURCE_KINDS, type MergePath, type ResourceKind } from './compose-merge.js';
import { fileFrom, normalProjectPath } from './compose-paths.js';

/**
 * Compose's top-level `include:` (compose-spec 14-include.md; compose-go loader/include.go):
 * each entry is a Compose model of its own (one file, or several merged as -f would), loaded
 * with its own directory as project directory, whose resources are then copied into the
 * including file. Done per file, before that file's extends and its merge with the next file,
 * so an override file can still change an included service.
 */

export interface IncludeEntry {
  /** The entry's files, relative to the project directory: the first is the model, the others merged over it. */
  paths: string[];
  /** Its index in the `include` list, for error paths (['include', index]). */
  index: number;
}

export interface IncludeError {
  /** The file to report in (the including one). */
  file: string;
  /** Where, from the top of that file. */
  path: MergePath;
  message: string;
}

/**
 * The files an `include:` value names (a list of paths, or of `{ path: string | string[],
 * project_directory?, env_file? }`), relative to `fromFile`'s directory and normalised. Refused
 * with why: paths leaving the project, remote or absolute ones, a file that includes itself
 * through `ancestors` (the files that included `fromFile`, outermost first), and the options the
 * agent does not implement, rather than ignored.
 */
export function includeEntries(include: unknown, fromFile: string, ancestors: readonly string[] = []): { entries: IncludeEntry[]; files: string[]; errors: IncludeError[] } {
  const from = normalProjectPath(fromFile);
  const errors: IncludeError[] = [];
  const entries: IncludeEntry[] = [];
  const err = (path: MergePath, message: string) => errors.push({ file: from, path, message: `include: ${message}` });
  if (include === undefined || include === null) return { entries, files: [], errors };
  if (!Array.isArray(include)) {
    err(['include'], 'write a list of Compose files (or of { path: ... })');
    return { entries, files: [], errors };
  }
  const chain = [...ancestors.map(normalProjectPath), from];
  include.forEach((item, index) => {
    const at: MergePath = ['include', index];
    const written = typeof item === 'string' ? [item] : isMapping(item) ? item.path : undefined;
    const list = typeof written === 'string' ? [written] : Array.isArray(written) ? written : undefined;
    if (!list || list.length === 0 || list.some((p) => typeof p !== 'string')) return err(isMapping(item) ? [...at, 'path'] : at, '`path` is required: the Compose file(s) to include');
    const paths: string[] = [];
    list.forEach((p, j) => {
      const where: MergePath = typeof item === 'string' ? at : typeof written === 'string' ? [...at, 'path'] : [...at, 'path', j];
      const found = fileFrom(from, p as string);
      if ('error' in found) return err(where, found.error);
      if (chain.includes(found.path)) return err(where, `include cycle: ${[...chain, found.path].join(' includes ')}`);
      paths.push(found.path);
    });
    if (isMapping(item)) unsupportedOptions(item, from, paths[0], at, err);
    if (paths.length === list.length) entries.push({ paths, index });
  });
  const files = [...new Set(entries.flatMap((e) => e.paths))];
  return { entries, files, errors };
}

/**
 * `project_directory` is accepted only when it is the default (the first file's directory):
 * the agent resolves an included file's relative paths against its own directory. `env_file`
 * is refused: the variables of every file come from the project's `.env` and the agent's
 * environment, so a separate set for one included model would be silently ignored.
 */
function unsupportedOptions(item: Raw, from: string, first: string | undefined, at: MergePath, err: (path: MergePath, message: string) => void): void {
  if (item.project_directory !== undefined) {
    const dir = typeof item.project_directory === 'string' ? fileFrom(from, item.project_directory) : { error: 'not a path' };
    const fallback = first === undefined ? undefined : posix.dirname(first);
    if ('error' in dir || dir.path !== fallback) {
      err([...at, 'project_directory'], `not supported: project_directory other than the included file's own directory${fallback ? ` (${fallback})` : ''}: the agent resolves the relative paths of an included file against its directory, as Compose does by default; move the file there, or leave project_directory out`);
    }
  }
  if (item.env_file !== undefined) {
    err([...at, 'env_file'], "not supported: env_file for an included model: the agent interpolates every file with the project's .env and its own environment; put these variables there, and leave env_file out");
  }
}

/** One included model, loaded and merged (its paths already rebased for the including file). */
export interface IncludedModel {
  /** Its index in the including file's `include` list. */
  index: number;
  /** Its first file, for messages. */
  path: string;
  value: Raw;
}

const NOUN: Record<'services' | ResourceKind, string> = { services: 'service', volumes: 'volume', networks: 'network', secrets: 'secret', configs: 'config', models: 'model' };

/**
 * Resources an include would define twice: a service (or volume, network, secret, config,
 * model) of an included model that the including file, or an earlier include, already defines.
 * Compose refused these ("conflicts with imported resource") unless both definitions are the
 * same; an identical one (a network two includes both declare) is therefore not a conflict.
 * compose-go since v2.10 (Nov 2025) merges the including file's definition over the imported one
 * instead, and the spec says Compose warns and does not merge: refusing is the one reading that
 * never deploys something other than what one of the files says.
 */
export function includeConflicts(including: { path: string; value: Raw }, included: readonly IncludedModel[]): IncludeError[] {
  const errors: IncludeError[] = [];
  for (const kind of ['services', ...RESOURCE_KINDS] as const) {
    const seen = new Map<string, { from: string; def: unknown }>();
    for (const [name, def] of Object.entries(section(including.value, kind))) seen.set(name, { from: including.path, def });
    for (const model of included) {
      for (const [name, def] of Object.entries(section(model.value, kind))) {
        const earlier = seen.get(name);
        if (!earlier) {
          seen.set(name, { from: model.path, def });
          continue;
        }
        if (sameValue(earlier.def, def)) continue;
        const which = earlier.from === including.path ? including.path : `${earlier.from} (included before)`;
        errors.push({
          file: including.path,
          path: ['include', model.index],
          message: `include: ${NOUN[kind]} "${name}" of ${model.path} is already defined in ${which}: Compose refuses an include that redefines it; rename one of them, or change the included one from an override file (compose.override.yaml)`,
        });
      }
    }
  }
  return errors;
}

/**
 * The including file with the resources of its included models copied in, and `include`
 * removed. A name already defined keeps its first definition (includeConflicts reports the
 * conflict). `origin` says which file each imported resource came from.
 */
export function importIncluded(including: Raw, included: readonly IncludedModel[]): { value: Raw; origin: Record<'services' | ResourceKind, Record<string, string>> } {
  const value = clone(including);
  delete value.include;
  const origin = Object.fromEntries(['services', ...RESOURCE_KINDS].map((k) => [k, {} as Record<string, string>])) as Record<'services' | ResourceKind, Record<string, string>>;
  for (const kind of ['services', ...RESOURCE_KINDS] as const) {
    for (const model of included) {
      const defs = section(model.value, kind);
      if (Object.keys(defs).length === 0) continue;
      const into = isMapping(value[kind]) ? (value[kind] as Raw) : {};
      for (const [name, def] of Object.entries(defs)) {
        if (name in into) continue;
        into[name] = clone(def);
        origin[kind][name] = model.path;
      }
      value[kind] = into;
    }
  }
  return { value, origin };
}

function section(value: Raw, kind: string): Raw {
  return isMapping(value[kind]) ? (value[kind] as Raw) : {};
}
