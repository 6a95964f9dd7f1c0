import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../agent/config/config.js';

const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
function file(content: string): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, content);
  return p;
}

describe('loadConfig', () => {
  it('has defaults for everything', async () => {
    const c = await loadConfig({}, {});
    expect(c).toMatchObject({ stateDir: '/var/lib/gitops-agent', stack: 'default', source: { kind: 'dir' }, reconcile: { intervalMs: 60_000, concurrency: 2 }, http: { listen: { host: '127.0.0.1', port: 9180 } }, logLevel: 'info' });
  });

  it('file < environment < flags', async () => {
    const path = file('stateDir: /from/file\nreconcile: {interval: 30s, concurrency: 4}\nsource:\n  git: {url: "https://git.example/x.git", branch: prod}\n');
    const c = await loadConfig({ config: path, interval: '5s' }, { AGENT_STATE_DIR: '/from/env', AGENT_GIT_BRANCH: 'main' });
    expect(c.stateDir).toBe('/from/env');
    expect(c.reconcile).toMatchObject({ intervalMs: 5000, concurrency: 4 });
    expect(c.source).toMatchObject({ kind: 'git', url: 'https://git.example/x.git', branch: 'main', path: 'desired-state', revert: true, renovateConfig: 'renovate.json' });
  });

  it('an explicit --source directory wins over a Git source in the file', async () => {
    const path = file('source:\n  git: {url: "https://git.example/x.git"}\n');
    expect((await loadConfig({ config: path, source: '/srv/state' }, {})).source).toEqual({ kind: 'dir', path: '/srv/state' });
  });

  it.each([
    ['unknown key', 'stateDri: /x\n', /additional properties "stateDri"/],
    ['bad type', 'reconcile: {concurrency: many}\n', /reconcile.concurrency: must be integer/],
    ['not a map', '- a\n', /top level must be a map/],
    ['bad YAML', 'a: [\n', /not valid YAML/],
  ])('refuses %s with the key named', async (_n, content, message) => {
    await expect(loadConfig({ config: file(content) }, {})).rejects.toThrow(message);
  });

  it('takes a restic image pinned by digest or a local one by its image id, nothing looser', async () => {
    const id = `sha256:${'a'.repeat(64)}`;
    for (const image of [`registry.example.org/restic/restic:0.14.0@${id}`, id]) {
      const c = await loadConfig({ config: file(`backup: {restic: {image: "${image}"}}\n`) }, {});
      expect(c.backup).toMatchObject({ kind: 'restic', image });
    }
    for (const image of ['restic/restic:0.14.0', 'sha256:abc', `x${id}`]) {
      await expect(loadConfig({ config: file(`backup: {restic: {image: "${image}"}}\n`) }, {})).rejects.toThrow(/backup.restic.image: must match pattern/);
    }
  });

  it('refuses a bad environment override by name', async () => {
    await expect(loadConfig({}, { AGENT_CONCURRENCY: 'lots' })).rejects.toThrow(/AGENT_CONCURRENCY must be a whole number/);
    await expect(loadConfig({}, { AGENT_PRUNE: 'maybe' })).rejects.toThrow(/AGENT_PRUNE must be true or false/);
  });

  it("turns the listener off with ''", async () => {
    expect((await loadConfig({ listen: '' }, {})).http.listen).toBeUndefined();
  });
});

it('the configuration schema holds the notifications schema of the notifier', async () => {
  const { NOTIFICATIONS_SCHEMA } = await import('../../agent/notify/config-schema.js');
  const schema = (await import('../../schema/agent-config.schema.json', { with: { type: 'json' } })).default as { properties: Record<string, unknown> };
  expect(schema.properties.notifications).toEqual(JSON.parse(JSON.stringify(NOTIFICATIONS_SCHEMA)));
});

describe('the Compose files of the project', () => {
  it('COMPOSE_FILE as Compose reads it, AGENT_COMPOSE_FILES over it, -f over both', async () => {
    expect((await loadConfig({}, {})).composeFiles).toEqual([]);
    expect((await loadConfig({}, { COMPOSE_FILE: 'compose.yaml:compose.prod.yaml' })).composeFiles).toEqual(['compose.yaml', 'compose.prod.yaml']);
    expect((await loadConfig({}, { COMPOSE_FILE: 'a.yaml', AGENT_COMPOSE_FILES: 'compose.yaml, b.yaml' })).composeFiles).toEqual(['compose.yaml', 'b.yaml']);
    expect((await loadConfig({ composeFiles: ['c.yaml'] }, { COMPOSE_FILE: 'a.yaml' })).composeFiles).toEqual(['c.yaml']);
    await expect(loadConfig({ composeFiles: ['../up.yaml'] }, {})).rejects.toThrow(/composeFiles/);
  });
});
