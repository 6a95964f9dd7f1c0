import { RE2JS } from 're2js';
import { AgentError } from '../core/errors.js';
import { imageName } from './quarantine.js';
import type { DesiredState } from '../model/desired.js';

interface PackageRule {
  description?: string | string[];
  matchDatasources?: string[];
  matchManagers?: string[];
  matchPackageNames?: string[];
  matchDepNames?: string[];
  automerge?: boolean;
  [key: string]: unknown;
}

export interface PolicyProblem {
  service: string;
  /** Index in packageRules of the rule at fault, when one is. */
  rule?: number;
  message: string;
}

/**
 * One truth for policy: a service whose `x-agent.policy` is `auto` must have a Renovate rule
 * that merges its updates automatically, and a `manual` one must have none. Rules are matched
 * the way Renovate matches package names: exact names, globs, `/regex/flags`, and `!`
 * negations. Update types are not considered: a rule that auto-merges any kind of update of
 * the image makes it `auto`.
 */
export function checkPolicies(desired: DesiredState, renovateJson: string): PolicyProblem[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(renovateJson);
  } catch (err) {
    return [{ service: '*', message: `renovate.json is not valid JSON: ${(err as Error).message}` }];
  }
  const shape = shapeProblems(parsed);
  if (shape.length > 0) return shape;
  const config = parsed as { automerge?: boolean; packageRules?: PackageRule[] };
  const rules = config.packageRules ?? [];
  const problems: PolicyProblem[] = [];
  for (const s of Object.values(desired.services)) {
    const name = imageName(s.spec.image);
    const matching = rules.map((r, i) => ({ r, i })).filter(({ r }) => ruleMatches(r, name));
    const merging = matching.filter(({ r }) => r.automerge === true);
    const globalAutomerge = config.automerge === true && !matching.some(({ r }) => r.automerge === false);
    if (s.agent.policy === 'auto' && merging.length === 0 && !globalAutomerge) {
      problems.push({ service: s.name, message: `service ${s.name} has x-agent.policy auto, but no rule in renovate.json sets automerge: true for its image ${name}` });
    }
    if (s.agent.policy === 'manual') {
      for (const { r, i } of merging) problems.push({ service: s.name, rule: i, message: `service ${s.name} has x-agent.policy manual, but packageRules[${i}]${describe(r)} sets automerge: true for its image ${name}` });
      if (globalAutomerge) problems.push({ service: s.name, message: `service ${s.name} has x-agent.policy manual, but renovate.json sets automerge: true for every package` });
    }
  }
  return problems;
}

const STRING_LISTS = ['matchDatasources', 'matchManagers', 'matchPackageNames', 'matchDepNames'] as const;

/** The parts of renovate.json the check reads, by shape: anything else it would misread is refused, located. */
function shapeProblems(config: unknown): PolicyProblem[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(config)) return [{ service: '*', message: 'renovate.json must hold an object' }];
  const problems: PolicyProblem[] = [];
  if (config.automerge !== undefined && typeof config.automerge !== 'boolean') problems.push({ service: '*', message: 'renovate.json: automerge must be true or false' });
  const rules = config.packageRules;
  if (rules === undefined) return problems;
  if (!Array.isArray(rules)) return [...problems, { service: '*', message: 'renovate.json: packageRules must be a list of rules' }];
  rules.forEach((r: unknown, i) => {
    if (!isObject(r)) return problems.push({ service: '*', rule: i, message: `renovate.json: packageRules[${i}] must be an object` });
    if (r.automerge !== undefined && typeof r.automerge !== 'boolean') problems.push({ service: '*', rule: i, message: `renovate.json: packageRules[${i}].automerge must be true or false` });
    for (const key of STRING_LISTS) {
      const v = r[key];
      if (v === undefined) continue;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
        problems.push({ service: '*', rule: i, message: `renovate.json: packageRules[${i}].${key} must be a list of strings` });
        continue;
      }
      if (key === 'matchPackageNames' || key === 'matchDepNames') {
        for (const p of v as string[]) {
          const why = patternProblem(p.startsWith('!') ? p.slice(1) : p);
          if (why) problems.push({ service: '*', rule: i, message: `renovate.json: packageRules[${i}].${key}: ${JSON.stringify(p.length > 80 ? `${p.slice(0, 80)}...` : p)} ${why}` });
        }
      }
    }
    return undefined;
  });
  return problems;
}

function describe(r: PackageRule): string {
  const d = Array.isArray(r.description) ? r.description[0] : r.description;
  return d ? ` ("${d.length > 60 ? `${d.slice(0, 60)}...` : d}")` : '';
}

function ruleMatches(r: PackageRule, name: string): boolean {
  if (r.matchDatasources && !r.matchDatasources.includes('docker')) return false;
  if (r.matchManagers && !r.matchManagers.includes('docker-compose')) return false;
  const patterns = [...(r.matchPackageNames ?? []), ...(r.matchDepNames ?? [])];
  if (patterns.length === 0) return true;
  const positive = patterns.filter((p) => !p.startsWith('!'));
  const negative = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
  if (negative.some((p) => patternMatches(p, name))) return false;
  return positive.length === 0 || positive.some((p) => patternMatches(p, name));
}

/**
 * Renovate's pattern forms: `/regex/flags`, glob (`*`, `**`, `?`), or an exact name. Both regex
 * and glob are matched with RE2 (re2js), as Renovate matches them: linear in the name, whatever
 * the pattern, so no pattern in a pushed renovate.json can hang the agent.
 */
export function patternMatches(pattern: string, name: string): boolean {
  const re = compilePattern(pattern);
  return re ? re.matcher(name).find() : pattern === name;
}

/** Why a pattern cannot be used, or undefined. */
export function patternProblem(pattern: string): string | undefined {
  try {
    compilePattern(pattern);
    return undefined;
  } catch (err) {
    return `is not a pattern RE2 accepts (Renovate matches with RE2): ${(err as Error).message}`;
  }
}

const REGEX_FLAGS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0, g: 0 };

/** The compiled pattern, or undefined for an exact name; throws for one RE2 refuses. */
function compilePattern(pattern: string): RE2JS | undefined {
  const re = /^\/(.+)\/([a-z]*)$/.exec(pattern);
  if (re) {
    let flags = 0;
    for (const f of re[2] ?? '') {
      const bit = REGEX_FLAGS[f];
      if (bit === undefined) throw new AgentError('DESIRED_INVALID', `unknown flag ${f}`, { data: { flag: f } });
      flags |= bit;
    }
    return RE2JS.compile(re[1] as string, flags);
  }
  if (/[*?]/.test(pattern)) {
    const source = pattern
      .split('**')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.'))
      .join('.*');
    return RE2JS.compile(`^${source}$`);
  }
  return undefined;
}
