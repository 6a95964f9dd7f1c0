import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { artifactTags, parseTags, snapshotPath, stdinName } from '../../agent/backup/restic/restic-format.js';
import { selectExpired } from '../../agent/backup/retention.js';
import { loadConfig } from '../../agent/config/config.js';
import type { Revision } from '../../agent/core/ids.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { BackupManifest } from '../../agent/model/backup.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('restic snapshot tags', () => {
  it('name the backup, stack, service, artifact, reason, image digest and revision, and read back', () => {
    const tags = artifactTags({ id: '20261201T020000Z-abcdef', host: 'h', stack: 'gitea', service: 'db', reason: 'update', image: `postgres:15.8@${DIGEST}`, revision: 'c0ffee' }, 'volume-pgdata');
    expect(tags).toEqual(['gitops-agent', 'backup=20261201T020000Z-abcdef', 'stack=gitea', 'service=db', 'artifact=volume-pgdata', 'reason=update', `image=${DIGEST}`, 'revision=c0ffee']);
    expect(parseTags(tags)).toMatchObject({ backup: '20261201T020000Z-abcdef', service: 'db', artifact: 'volume-pgdata', image: DIGEST });
  });

  it('hold no comma or space, which restic would split on', () => {
    const tags = artifactTags({ id: 'x', host: 'h', stack: 's', service: 'a,b c', reason: 'manual', image: 'unpinned:tag' }, 'f');
    expect(tags).toContain('service=a_b_c');
    expect(tags).toContain('image=unpinned:tag');
    expect(tags.some((t) => t.startsWith('revision='))).toBe(false);
  });

  it('give each service and artifact its own stable path, so that every backup finds its parent', () => {
    expect(snapshotPath('gitea', 'db', 'volume-pgdata')).toBe('/gitea/db/volume-pgdata');
    expect(stdinName('gitea', 'db', 'postgres.dump')).toBe('gitea--db--postgres.dump');
  });
});

describe('retention before a backup', () => {
  const m = (id: string, hoursAgo: number): BackupManifest => ({ version: 1, id, host: 'h', stack: 's', service: 'db', reason: 'scheduled', createdAt: new Date(Date.UTC(2026, 11, 1) - hoursAgo * 3600_000).toISOString(), finishedAt: '', image: 'x', consistency: 'none', store: '', artifacts: [] });
  it('keep 1 still keeps the newest complete backup, whatever comes next', () => {
    expect(selectExpired([m('a', 1), m('b', 2)], { retention: { keep: 0 } }, Date.UTC(2026, 11, 1), new Set()).map((x) => x.id)).toEqual(['b']);
  });
});

describe('backup configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-restic-'));
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };

  it('is restic once restic.image is set, with the repository and its password under the state directory', async () => {
    const c = await loadConfig({ config: file('a.yaml', `stateDir: /srv/agent\nbackup:\n  restic: {image: "r/restic:0.14.0@${DIGEST}"}\n`) }, {});
    expect(c.backup).toEqual({ kind: 'restic', dir: '/srv/agent/restic', image: `r/restic:0.14.0@${DIGEST}`, passwordFile: '/srv/agent/restic-password' });
    expect((await loadConfig({}, {})).backup).toEqual({ kind: 'local', dir: '/var/lib/gitops-agent/backups' });
    expect((await loadConfig({}, { AGENT_BACKUP_RESTIC_IMAGE: `r/restic@${DIGEST}`, AGENT_BACKUP_DIR: '/b' })).backup).toMatchObject({ kind: 'restic', dir: '/b' });
  });

  it.each([
    ['restic without an image', 'backup: {format: restic}\n', /backup.restic.image is not set/],
    ['an image not pinned by digest', 'backup: {restic: {image: "restic/restic:0.14.0"}}\n', /backup.restic.image: must match pattern/],
    ['restic with the archives\' S3 settings', `backup: {restic: {image: "r@${DIGEST}"}, s3: {bucket: b}}\n`, /backup.s3 holds archives: a restic repository in S3 goes under backup.restic.s3/],
    ['a restic S3 endpoint without a scheme', `backup: {restic: {image: "r@${DIGEST}", s3: {endpoint: "s3.example", bucket: b}}}\n`, /backup.restic.s3.endpoint: must match pattern/],
    ['restic settings with the archive format', `backup: {format: archive, restic: {image: "r@${DIGEST}"}}\n`, /backup.restic is set but backup.format is archive/],
  ])('refuses %s, saying why', async (_n, content, message) => {
    await expect(loadConfig({ config: file(`${Math.random()}.yaml`, content) }, {})).rejects.toThrow(message);
  });
});

describe('drills in the desired state', () => {
  const load = (content: string) => loadDesiredState({ files: [{ path: 'stack.yaml', content }], revision: 'r' as Revision, env: {}, defaultStack: 'test' });
  const stack = (backup: string, jobs = '') => `${jobs}services:\n  db:\n    image: "postgres:15@${DIGEST}"\n    volumes: [pgdata:/data]\n    x-agent:\n      backup: ${backup}\nvolumes:\n  pgdata: {}\n`;

  it('a drill query and a drill job are read', () => {
    const r = load(stack('{postgres: {database: app}, drill: {query: "SELECT count(*) > 0 FROM users"}}', 'x-agent:\n  jobs:\n    weekly: {schedule: "0 3 * * 0", drill: {services: [db]}}\n'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.state.services.db?.agent.backup?.drill).toEqual({ query: 'SELECT count(*) > 0 FROM users' });
    expect(r.state.jobs.weekly?.drill).toEqual({ services: ['db'] });
  });

  it.each([
    ['a drill query without a database', stack('{volumes: [pgdata], drill: {query: "SELECT true"}}'), /a drill query checks a restored database: it needs `postgres`/],
    ['a job with two actions', stack('{volumes: [pgdata]}', 'x-agent:\n  jobs:\n    j: {schedule: "0 3 * * 0", drill: {}, backup: {}}\n'), /a job does one thing: `backup`, `drill` are given/],
    ['a drill job of an unknown service', stack('{volumes: [pgdata]}', 'x-agent:\n  jobs:\n    j: {schedule: "0 3 * * 0", drill: {services: [nope]}}\n'), /unknown service "nope"/],
  ])('refuses %s, at its line', (_n, content, message) => {
    const r = load(content);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.line}: ${i.message}`).join('\n')).toMatch(message);
    expect(r.issues.every((i) => i.line > 0)).toBe(true);
  });
});
