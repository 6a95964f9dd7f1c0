import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { Revision } from '../../agent/core/ids.js';
import { checkPolicies, patternMatches } from '../../agent/renovate/policy.js';
import { REFERENCE_TREE } from './fakes/reference-stack.js';

const reference = loadDesiredState({ files: [{ path: 'compose.yaml', content: readFileSync(new URL('../../desired-state/compose.yaml', import.meta.url), 'utf8') }], revision: 'dir:x' as Revision, env: { POSTGRES_PASSWORD: 'x' }, defaultStack: 'x', tree: REFERENCE_TREE });
if (!reference.ok) throw new Error('the reference stack must load');
const renovateJson = readFileSync(new URL('../../renovate.json', import.meta.url), 'utf8');

describe('checkPolicies', () => {
  it('the project renovate.json agrees with the reference stack', () => {
    expect(checkPolicies(reference.state, renovateJson)).toEqual([]);
  });

  it('names the service and the rule when a manual service would be auto-merged', () => {
    const config = JSON.parse(renovateJson) as { packageRules: { matchPackageNames?: string[] }[] };
    config.packageRules[0]!.matchPackageNames = ['/(^|/)(nginx|gitea)$/'];
    expect(checkPolicies(reference.state, JSON.stringify(config))).toEqual([{ service: 'server', rule: 0, message: expect.stringMatching(/^service server has x-agent.policy manual, but packageRules\[0\] \("nginx.*"\) sets automerge: true for its image docker.io\/gitea\/gitea$/) }]);
  });

  it('names the service when an auto service has no automerge rule', () => {
    const config = JSON.parse(renovateJson) as { packageRules: unknown[] };
    config.packageRules.splice(0, 1);
    expect(checkPolicies(reference.state, JSON.stringify(config)).map((p) => p.service)).toEqual(['nginx']);
  });

  it('a global automerge makes every manual service a mismatch', () => {
    expect(checkPolicies(reference.state, JSON.stringify({ automerge: true })).map((p) => p.service).sort()).toEqual(['db', 'server']);
  });
});

describe('a renovate.json of the wrong shape is refused, located, never a crash', () => {
  it.each([
    ['null', 'null', [undefined], /must hold an object/],
    ['a list', '[]', [undefined], /must hold an object/],
    ['packageRules null', '{"packageRules": null}', [undefined], /packageRules must be a list of rules/],
    ['a rule that is not an object', '{"packageRules": [null, 3]}', [0, 1], /packageRules\[\d\] must be an object/],
    ['non-string patterns', '{"packageRules": [{"matchPackageNames": [1, {"a": 2}], "automerge": true}]}', [0], /packageRules\[0\]\.matchPackageNames must be a list of strings/],
    ['automerge not a boolean', '{"automerge": "yes"}', [undefined], /automerge must be true or false/],
    ['a backreference (RE2 has none)', '{"packageRules": [{"matchPackageNames": ["/(a)\\\\1/"]}]}', [0], /is not a pattern RE2 accepts/],
    ['an unknown regex flag', '{"packageRules": [{"matchPackageNames": ["/nginx/x"]}]}', [0], /unknown flag x/],
  ])('%s', (_name, json, rules, message) => {
    const problems = checkPolicies(reference.state, json);
    expect(problems.map((p) => p.rule)).toEqual(rules);
    for (const p of problems) expect(p.message).toMatch(message);
  });

  it('patterns that backtrack for ages in a JavaScript regex are matched in linear time', () => {
    const name = `docker.io/${'a'.repeat(5000)}!`;
    for (const pattern of ['/(a+)+$/', '/^(a|aa)+$/', `docker.io/${'*a'.repeat(30)}*b`, `${'**a'.repeat(20)}**b`]) {
      expect(patternMatches(pattern, name)).toBe(false);
    }
  });
});

describe('patternMatches (Renovate pattern forms)', () => {
  it.each([
    ['/(^|/)nginx$/', 'docker.io/library/nginx', true],
    ['/(^|/)nginx$/', 'docker.io/library/nginx-exporter', false],
    ['docker.io/library/*', 'docker.io/library/nginx', true],
    ['docker.io/**', 'docker.io/gitea/gitea', true],
    ['docker.io/*', 'docker.io/gitea/gitea', false],
    ['nginx', 'nginx', true],
    ['/NGINX$/i', 'docker.io/library/nginx', true],
  ])('%s ~ %s = %s', (pattern, name, expected) => {
    expect(patternMatches(pattern, name)).toBe(expected);
  });
});
