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
  let config: { automerge?: boolean; packageRules?: PackageRule[] };
  try {
    config = JSON.parse(renovateJson) as typeof config;
  } catch (err) {
    return [{ service: '*', message: `renovate.json is not valid JSON: ${(err as Error).message}` }];
  }
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

/** Renovate's pattern forms: `/regex/flags`, glob (`*`, `**`, `?`), or an exact name. */
export function patternMatches(pattern: string, name: string): boolean {
  const re = /^\/(.+)\/([a-z]*)$/.exec(pattern);
  if (re) {
    try {
      return new RegExp(re[1] as string, re[2]).test(name);
    } catch {
      return false;
    }
  }
  if (/[*?]/.test(pattern)) {
    const source = pattern
      .split('**')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.'))
      .join('.*');
    return new RegExp(`^${source}$`).test(name);
  }
  return pattern === name;
}
