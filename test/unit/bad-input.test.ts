import { describe, expect, it } from 'vitest';
import type { Revision } from '../../agent/core/ids.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import { BAD_INPUTS, type BadInputFixture } from '../integration/support/bad-inputs.js';

/** The loader, in-process, over the whole corpus: each case refused with file, line and words. */
const fixture: BadInputFixture = { stack: 'bad-input', image: (v) => `reg.example:5000/fixture/web:${v}@sha256:${'e'.repeat(64)}` };
const VALID = `name: bad-input\nservices:\n  web:\n    image: ${fixture.image('1.0.0')}\n    network_mode: host\n`;

describe(`${BAD_INPUTS.length} malformed desired states, loaded in-process`, () => {
  it('has at least 60 cases', () => {
    expect(BAD_INPUTS.length).toBeGreaterThanOrEqual(60);
  });

  it.each(BAD_INPUTS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const content = typeof c.content === 'function' ? c.content(fixture) : c.content;
    const files = c.file ? [{ path: 'stack.yaml', content: VALID }, { path: c.file, content }] : [{ path: 'stack.yaml', content }];
    const r = loadDesiredState({ files, revision: 'dir:bad' as Revision, env: {}, defaultStack: 'bad-input' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const first = r.issues.filter((i) => i.severity !== 'warning')[0];
    expect(first?.file).toBe(c.file ?? 'stack.yaml');
    expect(first?.line).toBeGreaterThan(0);
    expect(first?.message.toLowerCase()).toContain(c.expect.toLowerCase());
    if (c.line) expect(first?.line).toBe(c.line);
  });
});
