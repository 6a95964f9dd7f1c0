import { posix } from 'node:path';
import type { ValidationIssue } from '../model/issues.js';
import { resolveExtends } from './compose-extends.js';
import { importIncluded, includeConflicts, includeEntries, type IncludedModel } from './compose-include.js';
import { isMapping, type Raw } from './compose-merge-keys.js';
import { mergeComposeFiles, originOf, type ComposeFileValue } from './compose-merge.js';
import { fileFrom, rebaseFilePaths } from './compose-paths.js';
import { mergeTagsOf, type MergeTag } from './compose-tags.js';
import { issueAt, type ParsedFile } from './parse.js';

/** One Compose file as read: parsed (with positions), interpolated, its merge tags. */
export interface ComposeFile {
  /** Relative to the project directory, posix: `compose.yaml`, `lib/db.yaml`. */
  rel: string;
  parsed: ParsedFile;
  value: Raw;
  tags: MergeTag[];
}

/** Reads another file of the project (an `include` or an `extends.file`), or says why it cannot. */
export type ReadComposeFile = (rel: string) => ComposeFile | { error: string };

/** The Compose file names `docker compose` looks for, in its order, and their overrides. */
export const DEFAULT_COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'] as const;
const OVERRIDES: Record<string, string> = { 'compose.yaml': 'compose.override.yaml', 'compose.yml': 'compose.override.yml', 'docker-compose.yaml': 'docker-compose.override.yaml', 'docker-compose.yml': 'docker-compose.override.yml' };

/**
 * Which files make the project, as Compose picks them: the ones listed (`files:` in the
 * configuration, COMPOSE_FILE, `-f`), else the first default file and its override. Undefined:
 * none of them exists, and every YAML file of the directory is a project of its own (the agent's
 * earlier layout).
 */
export function projectFiles(names: readonly string[], listed?: readonly string[]): { files: string[]; missing: string[] } | undefined {
  const present = new Set(names);
  if (listed && listed.length > 0) return { files: listed.filter((n) => present.has(n)), missing: listed.filter((n) => !present.has(n)) };
  const main = DEFAULT_COMPOSE_FILES.find((n) => present.has(n));
  if (!main) return undefined;
  const override = OVERRIDES[main] as string;
  return { files: present.has(override) ? [main, override] : [main], missing: [] };
}

/**
 * The files of one project composed as `docker compose` does, in compose-go's order: for each
 * file its `include`s, then its services' `extends`, then the files merged in order by
 * Compose's merge rules. Returns the model as one ParsedFile whose positions route each path to
 * the file that wrote it, so every later error still names the right file and line.
 */
export function composeProject(files: readonly ComposeFile[], read: ReadComposeFile, issues: ValidationIssue[]): { parsed: ParsedFile; value: Raw; read: string[] } | undefined {
  const known = new Map<string, ComposeFile>(files.map((f) => [f.rel, f]));
  const load = (rel: string): ComposeFile | { error: string } => {
    const seen = known.get(rel);
    if (seen) return seen;
    const r = read(rel);
    if ('rel' in r) known.set(rel, r);
    return r;
  };
  const parts: ComposeFileValue[] = [];
  for (const f of files) {
    const withIncludes = included(f, load, issues, [f.rel]);
    if (!withIncludes) return undefined;
    parts.push(extended({ ...f, value: withIncludes.value }, load, issues, withIncludes.from));
  }
  const merged = mergeComposeFiles(parts);
  const first = files[0] as ComposeFile;
  for (const c of merged.conflicts) issues.push(issueAt((known.get(c.file) ?? first).parsed, c.path, c.message));
  const route = (path: readonly (string | number)[]): ParsedFile => (known.get(originOf(merged.origin, path) ?? first.rel) ?? first).parsed;
  const read_ = [...known.keys()];
  if (files.length === 1 && known.size === 1) return { parsed: { ...first.parsed, value: merged.value }, value: merged.value, read: read_ };
  return { parsed: { ...first.parsed, value: merged.value, route }, value: merged.value, read: read_ };
}

/** A file read for a project: parsed, its tags taken (refused ones reported), the parse's own issues aside. */
export function composeFile(rel: string, parsed: ParsedFile, value: Raw, issues: ValidationIssue[]): ComposeFile {
  const { tags, refused } = mergeTagsOf(parsed.doc);
  for (const r of refused) issues.push(issueAt(parsed, r.path, r.message));
  return { rel, parsed, value, tags };
}

/** `include:` of a file: each included model (its own includes first) copied in; conflicts refused. */
function included(f: ComposeFile, load: (rel: string) => ComposeFile | { error: string }, issues: ValidationIssue[], ancestors: string[]): { value: Raw; from: Record<string, string> } | undefined {
  if (f.value.include === undefined) return { value: f.value, from: {} };
  const { entries, errors } = includeEntries(f.value.include, f.rel, ancestors.slice(0, -1));
  for (const e of errors) issues.push(issueAt(f.parsed, e.path, e.message));
  if (errors.length > 0) return undefined;
  const models: IncludedModel[] = [];
  for (const entry of entries) {
    const loaded: ComposeFileValue[] = [];
    for (const rel of entry.paths) {
      const g = load(rel);
      if ('error' in g) {
        issues.push(issueAt(f.parsed, ['include', entry.index], `include: ${g.error}`));
        return undefined;
      }
      const inner = included(g, load, issues, [...ancestors, rel]);
      if (!inner) return undefined;
      loaded.push(extended({ ...g, value: inner.value }, load, issues, inner.from));
    }
    const model = mergeComposeFiles(loaded);
    // Relative paths of an included file are relative to its own directory: rebased to the project's.
    models.push({ index: entry.index, path: entry.paths[0] as string, value: rebaseFilePaths(model.value, posix.dirname(entry.paths[0] as string), '.') });
  }
  const conflicts = includeConflicts({ path: f.rel, value: f.value }, models);
  for (const c of conflicts) issues.push(issueAt(f.parsed, c.path, c.message));
  if (conflicts.length > 0) return undefined;
  const imported = importIncluded(f.value, models);
  return { value: imported.value, from: imported.origin.services };
}

/** `extends:` of a file's services, against the file itself and the files they name. */
function extended(f: ComposeFile, load: (rel: string) => ComposeFile | { error: string }, issues: ValidationIssue[], includedFrom: Record<string, string> = {}): ComposeFileValue {
  const services = isMapping(f.value.services) ? (f.value.services as Record<string, unknown>) : {};
  // Services an include brought: each of their keys is reported in the included file.
  const fromIncludes = Object.fromEntries(Object.entries(includedFrom).map(([name, file]) => [name, Object.fromEntries(Object.keys(isMapping(services[name]) ? (services[name] as Raw) : {}).map((k) => [k, file]))]));
  const uses = Object.values(services).some((s) => isMapping(s) && s.extends !== undefined);
  if (!uses) return { path: f.rel, value: f.value, tags: f.tags, serviceOrigin: fromIncludes };
  const files: Record<string, Raw> = { [f.rel]: f.value };
  const tags: Record<string, MergeTag[]> = { [f.rel]: f.tags };
  // The files named, and the files those name in turn: resolveExtends walks the chain.
  const pending = [f.rel];
  while (pending.length > 0) {
    const rel = pending.pop() as string;
    for (const [name, s] of Object.entries(isMapping(files[rel]?.services) ? (files[rel]?.services as Record<string, unknown>) : {})) {
      const ext = isMapping(s) ? s.extends : undefined;
      const ref = isMapping(ext) && typeof ext.file === 'string' ? ext.file : undefined;
      if (!ref) continue;
      const target = fileFrom(rel, ref);
      if ('error' in target || files[target.path]) continue; // resolveExtends reports the bad path
      const g = load(target.path);
      if ('error' in g) {
        issues.push(issueAt(f.parsed, ['services', name, 'extends', 'file'], `extends: ${g.error}`));
        continue;
      }
      files[target.path] = g.value;
      tags[target.path] = g.tags;
      pending.push(target.path);
    }
  }
  const r = resolveExtends({ file: f.rel, files, tags });
  for (const e of r.errors) issues.push(issueAt(f.parsed, e.path, e.message));
  return { path: f.rel, value: { ...f.value, services: r.services }, tags: f.tags, serviceOrigin: { ...fromIncludes, ...r.origin } };
}
