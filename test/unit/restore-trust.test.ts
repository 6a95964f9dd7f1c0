import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createArchiveRepository } from '../../agent/backup/archive-repository.js';
import { withDesiredParameters } from '../../agent/backup/operations.js';
import { createLocalStore } from '../../agent/backup/store/local.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { Revision } from '../../agent/core/ids.js';
import type { BackupManifest } from '../../agent/model/backup.js';
import type { DockerPort } from '../../agent/ports/docker.js';

const D = `sha256:${'a'.repeat(64)}`;
const desired = () => {
  const r = loadDesiredState({
    files: [{ path: 'compose.yaml', content: `name: app\nservices:\n  db:\n    image: reg:5000/pg:15@${D}\n    volumes: [pgdata:/var/lib/postgresql/data]\n    x-agent:\n      backup: {postgres: {database: app, user: app}, volumes: [pgdata]}\nvolumes:\n  pgdata: {name: app-pgdata}\n` }],
    revision: 'dir:x' as Revision,
    env: {},
    defaultStack: 'app',
  });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.state;
};
const manifest = (over: Partial<BackupManifest> = {}): BackupManifest => ({
  version: 1, id: '20261201T000000Z-abcdef', host: 'h', stack: 'app', service: 'db', reason: 'manual', createdAt: '2026-12-01T00:00:00Z', finishedAt: '2026-12-01T00:00:01Z', image: `reg:5000/pg:15@${D}`, consistency: 'stopped', store: 'x', format: 'archive',
  artifacts: [
    { file: 'postgres.dump', kind: 'postgres-dump', bytes: 1, sha256: 'x', compression: 'none', database: 'postgres', user: 'postgres', dbService: 'db' },
    { file: 'volume-pgdata.tar.gz', kind: 'volume', bytes: 1, sha256: 'x', compression: 'gzip', target: '/var/lib/postgresql/data', volume: 'pgdata', volumeName: 'someone-elses-volume' },
  ],
  ...over,
});

describe('restores take their parameters from the desired state', () => {
  it("the volume by the desired state's engine name, pg_restore as the role of x-agent.backup", () => {
    const m = withDesiredParameters(manifest(), desired());
    expect(m.artifacts[0]).toMatchObject({ database: 'app', user: 'app', dbService: 'db' });
    expect(m.artifacts[1]).toMatchObject({ volumeName: 'app-pgdata', target: '/var/lib/postgresql/data' });
  });

  it('refuses what the desired state does not name', () => {
    const other = manifest({ artifacts: [{ file: 'volume-etc.tar.gz', kind: 'volume', bytes: 1, compression: 'gzip', target: '/etc', volume: 'etc', volumeName: 'host-etc' }] });
    expect(() => withDesiredParameters(other, desired())).toThrow(/holds the volume etc, which x-agent.backup of db does not name/);
    const path = manifest({ artifacts: [{ file: 'path.tar.gz', kind: 'path', bytes: 1, compression: 'gzip', target: '/root/.ssh' }] });
    expect(() => withDesiredParameters(path, desired())).toThrow(/holds the path \/root\/.ssh/);
  });
});

describe('archive manifests are authenticated with the host key', () => {
  it('ok when written here, altered when edited, unauthenticated without a key or a code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mac-'));
    const repo = createArchiveRepository(createLocalStore(dir), {} as DockerPort, pino({ level: 'silent' }), Buffer.alloc(32, 1));
    await repo.commit(manifest());
    const [m] = await repo.list();
    expect(m?.mac).toMatch(/^[0-9a-f]{64}$/);
    expect(repo.authenticate(m!)).toBe('ok');
    const file = join(dir, 'h/app/db/20261201T000000Z-abcdef/manifest.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('someone-elses-volume', 'host-etc'));
    const [edited] = await repo.list();
    expect(repo.authenticate(edited!)).toBe('altered');
    expect(repo.authenticate({ ...edited!, mac: undefined } as BackupManifest)).toBe('unauthenticated');
    const otherKey = createArchiveRepository(createLocalStore(dir), {} as DockerPort, pino({ level: 'silent' }), Buffer.alloc(32, 2));
    expect(otherKey.authenticate(m!)).toBe('altered');
  });
});
