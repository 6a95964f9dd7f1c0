import { describe, expect, it } from 'vitest';
import { tagIssues } from '../../agent/cli/tag-check.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import { resolvePolicy } from '../../agent/policy/policy.js';
import type { Revision } from '../../agent/core/ids.js';
import type { TagLookup } from '../../agent/docker/registry-tags.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const state = () => {
  const r = loadDesiredState({ files: [{ path: 'compose.yaml', content: `name: t\nservices:\n  web:\n    image: reg:5000/web:1.27.3@${d('a')}\n  side:\n    image: reg:5000/side@${d('c')}\n` }], revision: 'dir:x' as Revision, env: {}, defaultStack: 't' });
  if (!r.ok) throw new Error('invalid');
  return r.state;
};
const config = (allow = false) => ({ docker: { configPath: '/nonexistent' }, policy: resolvePolicy(allow ? { allowDigestOnlyPins: true } : undefined, 'p.yaml', { stateDir: '/s', files: [] }) });

describe('tags that match their digests', () => {
  it('refuses a pin that is another build than its tag, at the image line; a digest-only pin is not asked', async () => {
    const asked: string[] = [];
    const lookup = async (ref: string): Promise<TagLookup> => (asked.push(ref), { ok: true, digest: d('b'), platforms: [] });
    const issues = await tagIssues(state(), config(), lookup);
    expect(asked).toEqual([`reg:5000/web:1.27.3@${d('a')}`]);
    expect(issues).toEqual([expect.objectContaining({ file: 'compose.yaml', line: 4, policy: 'allowDigestOnlyPins', message: expect.stringMatching(/^the tag 1.27.3 of reg:5000\/web is sha256:bbbbbbbbbbbb at the registry, not the pinned sha256:aaaaaaaaaaaa/) })]);
    expect((await tagIssues(state(), config(true), lookup))[0]).toMatchObject({ severity: 'warning' });
  });

  it('accepts a pin of one platform of the index the tag names; an unreachable registry is a warning', async () => {
    expect(await tagIssues(state(), config(), async () => ({ ok: true, digest: d('b'), platforms: [d('a')] }))).toEqual([]);
    expect(await tagIssues(state(), config(), async () => ({ ok: false, error: 'reg:5000: ECONNREFUSED' }))).toEqual([expect.objectContaining({ severity: 'warning', message: expect.stringContaining('cannot check that reg:5000/web:1.27.3 is the pinned') })]);
    expect(await tagIssues(state(), { ...config(), docker: { configPath: '/x', checkTags: false } }, async () => ({ ok: false, error: 'never asked' }))).toEqual([]);
  });
});
