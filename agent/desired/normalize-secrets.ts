import { posix } from 'node:path';
import type { InjectedFile, Mount, ProjectMount } from '../model/desired.js';
import type { Env } from './interpolate.js';
import type { NormalizeScope, Report } from './normalize-ports-volumes.js';
import { lookupProject, materialisedPath, projectPath } from './project-files.js';

type Raw = Record<string, unknown>;
export type Kind = 'secret' | 'config';

/** The top-level `secrets:` and `configs:` of the stack, by key. */
export interface SecretsScope {
  secrets: Record<string, Raw>;
  configs: Record<string, Raw>;
}

/**
 * A service's `secrets:` and `configs:` as Compose gives them to a container on one host: a file
 * (of the repository, or absolute on the host) is bound read-only; the content of an environment
 * variable or inline content is written into the container before it starts. Secrets go to
 * `/run/secrets/<name>`, configs to `/<name>`, unless a target says otherwise.
 */
export function normalizeSecretsAndConfigs(raw: Raw, base: (string | number)[], ctx: NormalizeScope & { env: Env; defined: SecretsScope; secretValues?: Set<string>; allowUnset?: boolean }, report: Report): { mounts: Mount[]; files: InjectedFile[] } {
  const mounts: Mount[] = [];
  const files: InjectedFile[] = [];
  for (const kind of ['secret', 'config'] as const) {
    const key = `${kind}s`;
    ((raw[key] as (string | Raw)[] | undefined) ?? []).forEach((item, i) => {
      const at = [...base, key, i];
      const ref = typeof item === 'string' ? { source: item } : (item as { source: string; target?: string; uid?: string | number; gid?: string | number; mode?: string | number });
      const def = ctx.defined[key as keyof SecretsScope][ref.source];
      if (!def) return report(at, `${kind} "${ref.source}" is not declared under the top-level \`${key}:\``);
      // A refused definition (external, a driver) is reported where it is written, once.
      if ((def.external !== undefined && def.external !== false) || def.driver !== undefined || def.template_driver !== undefined) return;
      const target = targetOf(kind, ref.target ?? ref.source);
      const owner = { uid: intOf(ref.uid, 0), gid: intOf(ref.gid, 0), mode: modeOf(ref.mode, 0o444) };
      if (owner.uid === undefined || owner.gid === undefined || owner.mode === undefined) return report(at, 'uid and gid must be numbers, mode an octal number like 0440');
      if (typeof def.file === 'string') {
        const m = fileMount(def.file, target, ctx);
        if ('error' in m) return report(at, `${kind} "${ref.source}": ${m.error}`);
        // A secret's file content is a secret: kept out of every text the agent writes.
        const text = m.project ? ctx.project.get(m.project.path)?.content : undefined;
        if (kind === 'secret' && text !== undefined) for (const v of [text, text.trim()]) if (v.length >= 4) ctx.secretValues?.add(v);
        if (ref.uid !== undefined || ref.gid !== undefined || ref.mode !== undefined) report(at, `uid, gid and mode have no effect on a ${kind} from a file: it is bound read-only as it is, as Compose binds it (give the content through environment: for its own owner and mode)`, 'warning');
        mounts.push(m);
        return;
      }
      const content = typeof def.environment === 'string' ? ctx.env[def.environment] : typeof def.content === 'string' ? def.content : undefined;
      if (content === undefined && ctx.allowUnset && typeof def.environment === 'string') return report(at, `${kind} "${ref.source}" comes from the variable ${def.environment}, which is not set: left out (--allow-unset)`, 'warning');
      if (content === undefined) return report(at, typeof def.environment === 'string' ? `${kind} "${ref.source}" comes from the variable ${def.environment}, which is not set in the env file or the allowed environment (interpolation.allowEnv)` : `${kind} "${ref.source}" has no file, environment${kind === 'config' ? ' or content' : ''}`);
      if (kind === 'secret' || typeof def.environment === 'string') ctx.secretValues?.add(content);
      files.push({ kind, name: ref.source, target, content, uid: owner.uid, gid: owner.gid, mode: owner.mode });
    });
  }
  return { mounts, files };
}

/** Refusals of the top-level definitions: the forms that need Swarm or a plugin. */
export function checkDefinitions(defined: SecretsScope, report: (path: (string | number)[], message: string) => void): void {
  for (const kind of ['secret', 'config'] as const) {
    for (const [name, def] of Object.entries(defined[`${kind}s`])) {
      const at = [`${kind}s`, name];
      if (def.external !== undefined && def.external !== false) report([...at, 'external'], `not supported: an external ${kind} lives in a Swarm cluster; on one host give it a file or an environment variable`);
      else if (def.driver !== undefined || def.template_driver !== undefined) report([...at, def.driver !== undefined ? 'driver' : 'template_driver'], `not supported: ${kind} drivers are Swarm plugins; give a file or an environment variable`);
      else if ([def.file, def.environment, def.content].filter((v) => v !== undefined).length !== 1) report(at, `a ${kind} takes exactly one of file, environment${kind === 'config' ? ', content' : ''}`);
    }
  }
}

function targetOf(kind: Kind, target: string): string {
  if (posix.isAbsolute(target)) return posix.normalize(target);
  return kind === 'secret' ? posix.join('/run/secrets', target) : posix.join('/', target);
}

function fileMount(file: string, target: string, ctx: NormalizeScope): Mount | { error: string } {
  const rel = projectPath(file);
  if ('error' in rel) return rel;
  if (posix.isAbsolute(rel.path)) return { type: 'bind', source: rel.path, target, readOnly: true };
  const ref = lookupProject(ctx.project, rel.path);
  if ('error' in ref) return ref;
  if (ref.kind !== 'file') return { error: ref.kind === 'missing' ? `"${file}" is not in the repository` : `"${file}" is a folder, not a file` };
  const project: ProjectMount = { path: rel.path, kind: 'file', digest: ref.digest };
  return { type: 'bind', source: materialisedPath(ctx.roots, project), target, readOnly: true, project };
}

function intOf(v: string | number | undefined, fallback: number): number | undefined {
  if (v === undefined) return fallback;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function modeOf(v: string | number | undefined, fallback: number): number | undefined {
  if (v === undefined) return fallback;
  // YAML 1.2 reads 0440 as the decimal 440: digits 0-7 are taken as octal, as the file means;
  // a number with other digits is a value already (0o440 reads as 288).
  if (typeof v === 'number') return /^[0-7]{1,4}$/.test(String(v)) ? parseInt(String(v), 8) : Number.isInteger(v) && v >= 0 && v <= 0o7777 ? v : undefined;
  const text = v.replace(/^0o/, '');
  return /^[0-7]{1,4}$/.test(text) ? parseInt(text, 8) : undefined;
}
