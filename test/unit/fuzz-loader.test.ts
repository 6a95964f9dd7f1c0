/**
 * A seeded fuzz test of everything the agent reads from the repository: thousands of mutated
 * desired states and renovate.json files, in-process. Each case must end in acceptance or a
 * located refusal (file, line >= 1, a message): never a throw, never a hang (the test's own
 * timeout bounds the whole run). The seed is printed on failure, so a case can be replayed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDesiredState } from '../../agent/desired/load.js';
import { resolvePolicy } from '../../agent/policy/policy.js';
import { checkPolicies } from '../../agent/renovate/policy.js';
import { parseQuarantineRules } from '../../agent/renovate/quarantine.js';
import type { Revision } from '../../agent/core/ids.js';
import { REFERENCE_TREE } from './fakes/reference-stack.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const CASES = Number(process.env.FUZZ_CASES ?? 2500);
const POLICY = resolvePolicy(undefined, '', { stateDir: '/var/lib/gitops-agent', files: [] });

/** mulberry32: small, seeded, good enough to pick mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const YAML_TOKENS = ['{', '}', '[', ']', ': ', '- ', '&a ', '*a', '<<: *a', '%YAML 1.1\n---\n', '%TAG ! tag:x:\n', '__proto__: 1', 'constructor: {}', 'prototype: x', '${X}', '${X:?boom}', '$${Y}', '!!binary aGVsbG8=', '!!js/function x', '!reset', '!override', '\t', '\n  ', '\n    ', '"', "'", '#', '|', '>-', '~', 'null', 'true', 'yes', '0x1F', '1e999', '-.inf', '\u2028', '\u0000', 'é', '???', 'extends: {service: x}', 'include: [../../etc/passwd]', 'network_mode: host', 'privileged: true', 'volumes: ["/:/h"]', 'x-agent: {policy: auto}', 'image: a@sha256:', '&c [*c]', 'k: &s {s: *s}', '\n__proto__:\n  polluted: 1\n'];
const JSON_TOKENS = ['{', '}', '[', ']', ',', ':', 'null', 'true', '1', '"(a+)+$"', '"/(a|a)*b/"', '"/x(?=y)/"', '"**/*"', '"packageRules"', '"matchPackageNames"', '"automerge"', '"description"', '"gitops-agent quarantine: x"', '"__proto__"', '"allowedVersions"', '"!/^1\\\\./"', '"a'.repeat(3000) + '"'];

/** Shapes that are valid JSON but not what renovate.json holds: each replaces one value. */
const JSON_VALUES = ['null', '1', '"x"', '[]', '[null]', '[1, {}]', '{}', '{"matchPackageNames": [1]}', '{"matchPackageNames": null, "automerge": "yes"}', '[{"matchPackageNames": ["/(a+)+$/"], "matchUpdateTypes": 7}]'];

/** renovate.json with one value replaced by another shape (the result stays JSON). */
function reshape(json: string, r: () => number): string {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return json;
  }
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(value, []);
  const path = paths[Math.floor(r() * paths.length)] as (string | number)[];
  const replacement = JSON.parse(JSON_VALUES[Math.floor(r() * JSON_VALUES.length)] as string) as unknown;
  if (path.length === 0) return JSON.stringify(replacement);
  let parent = value as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
  parent[path[path.length - 1] as string | number] = replacement;
  return JSON.stringify(value, null, 2);
}

function mutate(text: string, r: () => number, tokens: string[]): string {
  let out = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (out.length + 1));
    const pick = r();
    if (pick < 0.35) out = out.slice(0, at) + (tokens[Math.floor(r() * tokens.length)] as string) + out.slice(at);
    else if (pick < 0.55) out = out.slice(0, at) + out.slice(at + Math.floor(r() * 40));
    else if (pick < 0.7) {
      const lines = out.split('\n');
      const a = Math.floor(r() * lines.length);
      const b = Math.floor(r() * lines.length);
      [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
      out = lines.join('\n');
    } else if (pick < 0.8) {
      const lines = out.split('\n');
      const a = Math.floor(r() * lines.length);
      lines.splice(a, 0, ...Array.from({ length: 1 + Math.floor(r() * 3) }, () => lines[a] as string));
      out = lines.join('\n');
    } else if (pick < 0.9) out = out.slice(0, at) + (r() < 0.5 ? '['.repeat(r() < 0.2 ? 20_000 : 80) : '{a: '.repeat(80)) + out.slice(at);
    else out = out.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x2fff)) + out.slice(at);
  }
  return out;
}

const corpus = (name: string) => readFileSync(new URL(`../../../shared/compose-corpus/${name}/compose.yaml`, import.meta.url), 'utf8');
const SEEDS = [readFileSync(new URL('../../desired-state/compose.yaml', import.meta.url), 'utf8'), corpus('ac-gitea-postgres'), corpus('ac-nginx-golang-postgres'), corpus('ac-nextcloud-redis-mariadb')];
const RENOVATE = readFileSync(new URL('../../renovate.json', import.meta.url), 'utf8');

describe(`a seeded fuzz test (seed ${SEED}, ${CASES} cases each)`, () => {
  it('every mutated desired state is accepted or refused with a location, never a throw', () => {
    const r = rng(SEED);
    let accepted = 0;
    for (let i = 0; i < CASES; i++) {
      const base = SEEDS[i % SEEDS.length] as string;
      const content = mutate(base, r, YAML_TOKENS);
      let result;
      try {
        result = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: 'dir:fuzz' as Revision, env: { POSTGRES_PASSWORD: 'pw', X: 'x' }, defaultStack: 'fuzz', policy: POLICY, tree: REFERENCE_TREE });
      } catch (err) {
        throw new Error(`case ${i} (seed ${SEED}) threw ${(err as Error).stack}\n--- input ---\n${content}`);
      }
      if (result.ok) accepted++;
      else {
        expect(result.issues.length, `case ${i}: refused without a reason`).toBeGreaterThan(0);
        for (const issue of result.issues) {
          expect(issue.line, `case ${i}: ${issue.message}`).toBeGreaterThanOrEqual(1);
          expect(typeof issue.message === 'string' && issue.message.length > 0, `case ${i}: an issue without a message`).toBe(true);
          expect(issue.file, `case ${i}`).toBe('compose.yaml');
        }
      }
    }
    // Mutations are small: some cases stay valid, most do not; both paths are exercised.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(CASES);
  }, 240_000);

  it('every mutated renovate.json is read by shape, never a throw, with RE2 bounding its patterns', () => {
    const r = rng(SEED + 1);
    const loaded = loadDesiredState({ files: [{ path: 'compose.yaml', content: SEEDS[0] as string }], revision: 'dir:fuzz' as Revision, env: { POSTGRES_PASSWORD: 'pw' }, defaultStack: 'fuzz', tree: REFERENCE_TREE });
    if (!loaded.ok) throw new Error('the reference stack must load');
    let problems = 0;
    for (let i = 0; i < CASES; i++) {
      const json = r() < 0.5 ? reshape(RENOVATE, r) : mutate(RENOVATE, r, JSON_TOKENS);
      try {
        problems += checkPolicies(loaded.state, json).length;
        parseQuarantineRules(json);
      } catch (err) {
        throw new Error(`case ${i} (seed ${SEED + 1}) threw ${(err as Error).stack}\n--- input ---\n${json}`);
      }
    }
    expect(problems).toBeGreaterThan(0);
  }, 240_000);
});
