/**
 * The Compose files other projects publish (../shared/compose-corpus, CI has it): each one is
 * validated and planned as the agent would on a host, with stand-ins for the files it refers to
 * and values for its variables. Each is accepted, or refused with file:line and a reason a person
 * understands; none is accepted with a key dropped.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDesiredState, snapshotInput } from '../../agent/desired/load.js';
import { planChanges } from '../../agent/plan/plan.js';
import { createLocalDirSource } from '../../agent/source/local-dir.js';
import { CORPUS_ENV, checkoutCorpus, corpusNames } from '../harness/corpus.js';

const names = corpusNames();

/** Why a file is refused, when it is: each a decision documented in docs/desired-state.md. */
const REFUSED: Record<string, RegExp[]> = {
  'ac-minecraft': [/^not supported: "~\/minecraft_data": a path in the home directory/],
  'ac-nginx-golang-postgres': [/missing required key "image"/, /^not supported: the agent deploys pinned images/],
  'ac-traefik-golang': [/missing required key "image"/, /^not supported: the agent deploys pinned images/],
};

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.each(names)('%s', (name) => {
  it(REFUSED[name] ? 'is refused, each error at its line with the reason' : 'is accepted and planned, every service on its networks', async () => {
    const dir = checkoutCorpus(name);
    dirs.push(dir);
    const snap = await createLocalDirSource(dir).read();
    const r = loadDesiredState(snapshotInput(snap, { env: CORPUS_ENV, defaultStack: name, policy: undefined, roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' } }));
    const expected = REFUSED[name];
    if (expected) {
      expect(r.ok).toBe(false);
      if (r.ok) return;
      for (const i of r.issues) expect(i.line, i.message).toBeGreaterThan(0);
      for (const re of expected) expect(r.issues.map((i) => i.message)).toContainEqual(expect.stringMatching(re));
      return;
    }
    if (!r.ok) throw new Error(r.issues.map((i) => `${i.file}:${i.line}: ${i.message}`).join('\n'));
    const plan = planChanges({ desired: r.state, actual: { stack: r.state.stack, services: {} }, applied: {}, held: {}, prune: false });
    expect(plan.steps.map((s) => [s.service, s.action])).toEqual(Object.keys(r.state.services).map((s) => [s, 'create']));
    // Every service that sets no network_mode is on a network of the project, by name.
    for (const s of Object.values(r.state.services)) {
      if (s.spec.networks) expect(s.spec.networks.every((a) => a.aliases.includes(s.name))).toBe(true);
      else expect(s.spec.networkMode).toMatch(/^(host|bridge|none|container:.+)$/);
    }
  });
});

it('the corpus is there, and most of it is accepted as published', () => {
  expect(names.length).toBeGreaterThanOrEqual(16);
  expect(names.filter((n) => !REFUSED[n]).length).toBeGreaterThanOrEqual(13);
});
