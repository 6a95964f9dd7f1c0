import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { asRevision } from '../../agent/core/ids.js';
import { assess, type AssessDeps, type LoadCache } from '../../agent/reconcile/assess.js';
import type { DesiredSource } from '../../agent/ports/source.js';
import type { SourceSnapshot } from '../../agent/model/source.js';
import { emptyState } from '../../agent/model/agent-state.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker } from './fakes/fake-docker.js';

const D = `sha256:${'b'.repeat(64)}`;
const stack = (tag: string) => `name: demo\nservices:\n  web:\n    image: web:${tag}@${D}\n    network_mode: host\n`;

function context(files: () => string, cache: LoadCache): AssessDeps {
  const source = {
    kind: 'dir',
    location: '/srv/desired',
    read: async (): Promise<SourceSnapshot> => ({ revision: asRevision(`dir:${files().length}`), files: [{ path: 'compose.yaml', content: files() }] }),
    watch: () => () => undefined,
  } as unknown as DesiredSource;
  return { clock: fakeClock(), source, docker: new FakeDocker(), env: async () => ({}), defaultStack: 'demo', policy: undefined, roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' }, log: pino({ level: 'silent' }), loadCache: cache };
}

describe('the desired state loaded once per content', () => {
  it('reuses the last load while nothing changed, and loads again when a file changes (even with the same revision)', async () => {
    let content = stack('1.0.0');
    const cache: LoadCache = {};
    const ctx = context(() => content, cache);
    const a = await assess(ctx, {}, emptyState());
    const b = await assess(ctx, {}, emptyState());
    expect(a.kind).toBe('planned');
    expect(b.kind === 'planned' && a.kind === 'planned' && b.load === a.load).toBe(true);

    content = stack('1.1.0'); // same length: same revision in this fake source
    const c = await assess(ctx, {}, emptyState());
    expect(c.kind === 'planned' && c.load.state.services.web?.spec.image).toBe(`web:1.1.0@${D}`);
    expect(c.kind === 'planned' && a.kind === 'planned' && c.load === a.load).toBe(false);
  });
});
