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

describe('an archive verified as it streams into the container', () => {
  it('fails the restore when the file read for the extraction is not the one verified', async () => {
    const { pack } = await import('tar-stream');
    const { gzipSync } = await import('node:zlib');
    const { createHash } = await import('node:crypto');
    const tarOf = async (content: string) => {
      const p = pack();
      p.entry({ name: 'conf', type: 'directory' });
      p.entry({ name: 'conf/app.ini' }, content);
      p.finalize();
      const chunks: Buffer[] = [];
      for await (const c of p) chunks.push(c as Buffer);
      return gzipSync(Buffer.concat(chunks));
    };
    const verified = await tarOf('good\n');
    const swapped = await tarOf('evil\n');
    const dir = mkdtempSync(join(tmpdir(), 'swap-'));
    const store = createLocalStore(dir);
    const extracted: number[] = [];
    const docker = {
      putArchive: async (_id: string, _path: string, body: NodeJS.ReadableStream) => {
        let n = 0;
        for await (const c of body) n += (c as Buffer).length;
        extracted.push(n);
      },
    } as unknown as DockerPort;
    const repo = createArchiveRepository(store, docker, pino({ level: 'silent' }), Buffer.alloc(32, 1));
    const m = manifest({ artifacts: [{ file: 'path-conf.tar.gz', kind: 'path', bytes: verified.length, sha256: createHash('sha256').update(verified).digest('hex'), compression: 'gzip', target: '/etc/app/conf' }] });
    const key = 'h/app/db/20261201T000000Z-abcdef/path-conf.tar.gz';
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'h/app/db/20261201T000000Z-abcdef'), { recursive: true });
    writeFileSync(join(dir, key), verified);
    expect((await repo.verify(m)).every((c) => c.ok)).toBe(true);
    await repo.restoreFiles(m, m.artifacts[0]!, { container: 'c1' as never, image: 'x' });
    // swapped after the verification: the extraction's own read catches it
    writeFileSync(join(dir, key), swapped);
    await expect(repo.restoreFiles(m, m.artifacts[0]!, { container: 'c1' as never, image: 'x' })).rejects.toThrow(/changed since it was verified/);
    expect(extracted).toHaveLength(2);
  });
});
