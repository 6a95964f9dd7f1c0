import { loadDesiredState, snapshotInput } from '../desired/load.js';
import { projectRootsIn } from '../desired/project-files.js';
import { createLocalDirSource } from '../source/local-dir.js';
import { EXIT, ExitError } from './exit-codes.js';
import { formatIssues } from './format.js';
import type { ReadOnlyRuntime } from './runtime.js';
import type { ValidationIssue } from '../model/issues.js';
import type { DesiredState } from '../model/desired.js';
import { checkPolicies } from '../renovate/policy.js';
import { tagIssues } from './tag-check.js';
import { DEFAULT_PARSE_LIMITS, issueAt, parseYamlFile } from '../desired/parse.js';

/** x-agent.policy against renovate.json: each mismatch names the service and the rule, with the rule's line. */
function policyIssues(desired: DesiredState, renovate: { path: string; content: string } | undefined): ValidationIssue[] {
  if (!renovate) return [{ file: 'renovate.json', line: 1, column: 1, pointer: '', message: 'no renovate.json next to the desired state: update policies were not checked', severity: 'warning' }];
  // JSON is YAML: the YAML parser gives the line of each rule.
  const parsed = parseYamlFile({ path: renovate.path, content: renovate.content }, DEFAULT_PARSE_LIMITS).parsed;
  return checkPolicies(desired, renovate.content).map((p) => {
    const path = p.rule === undefined ? [] : ['packageRules', p.rule];
    return parsed ? issueAt(parsed, path, p.message) : { file: renovate.path, line: 1, column: 1, pointer: '', message: p.message };
  });
}

/** `agent validate [dir]`: schema and semantic checks of the desired state; touches nothing. */
export async function validateCommand(rt: ReadOnlyRuntime, opts: { dir?: string; json?: boolean; allowUnset?: boolean }, out: (s: string) => void): Promise<void> {
  const source = opts.dir ? createLocalDirSource(opts.dir) : rt.source;
  const snapshot = await source.read();
  const input = snapshotInput(snapshot, { env: await rt.env(), defaultStack: rt.config.stack, roots: projectRootsIn(rt.config.stateDir), policy: rt.config.policy, profiles: rt.config.profiles, composeFiles: rt.config.composeFiles, rootLabel: source.location });
  const result = loadDesiredState(opts.allowUnset ? { ...input, allowUnset: true } : input);
  const issues = result.ok ? [...result.warnings, ...policyIssues(result.state, snapshot.renovateConfig), ...(await tagIssues(result.state, rt.config))] : result.issues;
  const valid = issues.every((i) => i.severity === 'warning');
  if (opts.json) {
    out(JSON.stringify({ valid, revision: snapshot.revision, source: source.location, services: result.ok ? Object.keys(result.state.services) : [], issues }, null, 2));
  } else {
    if (issues.length > 0) out(formatIssues(issues));
    if (valid && result.ok) out(`${source.location}: valid (revision ${snapshot.revision}, stack ${result.state.stack}, ${Object.keys(result.state.services).length} services${snapshot.renovateConfig ? ', policies agree with renovate.json' : ''}${issues.length ? `, ${issues.length} warning(s)` : ''})`);
  }
  if (!valid) {
    const errors = issues.filter((i) => i.severity !== 'warning').length;
    throw new ExitError(EXIT.invalidDesiredState, `${source.location}: invalid desired state (${errors} error${errors === 1 ? '' : 's'})`);
  }
}
