/**
 * Backups and restores with a real PostgreSQL holding real rows, a local store and an S3
 * store (s3rver), through the agent's CLI: backup -> drop -> restore; a failing update of a
 * version that migrates data; store down, disk full, dump failing; an interrupted backup; a
 * malicious archive; a scheduled backup.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { ensurePostgres, psql, tableChecksum, waitForPostgres } from '../harness/postgres-fixture.js';
import type { PostgresImage } from '../harness/postgres.js';
import { freePort } from '../harness/ports.js';
import { harness } from '../harness/provided.js';
import { startS3Server, type S3TestServer } from '../harness/s3-server.js';
import { mountTmpfs } from '../harness/tmpfs.js';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { dbStackYaml, deployDbStack, listBackups, type DbOptions } from './support/db-stack.js';

let pg: PostgresImage;
let f: AgentFixture;
let dbPort: number;

beforeAll(async () => {
  pg = await ensurePostgres(harness());
}, 300_000);
beforeEach(async () => {
  f = await AgentFixture.create();
  dbPort = await freePort();
});
afterEach(async () => {
  await f.cleanup();
});

const dbYaml = (o: DbOptions = {}) => dbStackYaml(f, pg, dbPort, o);
const deployDb = (rows = 2000) => deployDbStack(f, pg, dbPort, rows);
const backups = () => listBackups(f);

/** Both formats, through the same commands: a restic repository and plain archives, each in a local directory. */
describe.each(['restic', 'archive'] as const)('backup and restore with a real PostgreSQL (%s, local)', (format) => {
  beforeEach(() => {
    if (format === 'restic') f.gitEnv.AGENT_BACKUP_RESTIC_IMAGE = harness().resticImage.pinned;
  });

  it('backup -> drop the data -> restore -> rows identical', async () => {
    const before = await deployDb(5000);
    const created = await f.run('backup create', ['db', '--json']);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const [made] = JSON.parse(created.stdout).backups as { id: string; format: string; artifacts: { file: string; kind: string; sha256: string; snapshot?: string }[]; consistency: string }[];
    expect(made?.format).toBe(format);
    expect(made?.artifacts.map((a) => a.file)).toEqual(format === 'restic' ? ['postgres.dump', 'volume-pgdata'] : ['postgres.dump', 'volume-pgdata.tar.gz']);
    if (format === 'restic') expect(made?.artifacts.every((a) => /^[0-9a-f]{8,64}$/.test(a.snapshot ?? ''))).toBe(true);
    expect(made?.consistency).toBe('stopped');
    expect(await tableChecksum(dbPort, 'items')).toBe(before);

    const verify = await f.run('backup verify', [made!.id]);
    expect(verify.code, verify.stdout).toBe(EXIT.ok);
    expect(verify.stdout).toMatch(/postgres\.dump\s+ok/);

    await psql(dbPort, 'DROP TABLE items');
    const refused = await f.run('restore', [made!.id]);
    expect(refused.code).toBe(EXIT.usage);
    // another host's backup (a shared store) only by name
    const elsewhere = await f.run('restore', [made!.id, '--yes'], { AGENT_HOST_NAME: 'other-host' });
    expect(elsewhere.code).toBe(EXIT.usage);
    expect(elsewhere.stderr).toContain(`backup ${made!.id} was made on host test-host, not on this one (other-host): add --from-host test-host to restore it here`);
    const restored = await f.run('restore', [made!.id, '--yes', '--from-host', 'test-host'], { AGENT_HOST_NAME: 'other-host' });
    expect(restored.code, restored.stdout + restored.stderr).toBe(EXIT.ok);
    expect(restored.stdout).toMatch(/restored from backup .*the previous data is in backup/);
    await waitForPostgres(dbPort);
    expect(await tableChecksum(dbPort, 'items')).toBe(before);
    const all = await backups();
    expect(all.map((b) => b.reason).sort()).toEqual(['manual', 'pre-restore']);
    const s = await f.status();
    expect(s.services.find((x) => x.name === 'db')?.lastBackup).toBeDefined();
  });

  it('a restore drill restores the latest backup into a scratch server, never touching what runs', async () => {
    const checksum = await deployDb(1500);
    expect((await f.run('backup create', ['db'])).code).toBe(EXIT.ok);
    const running = await f.containers();
    const drill = await f.run('backup drill', ['db', '--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(EXIT.ok);
    const [d] = JSON.parse(drill.stdout).drills as { ok: boolean; checks: string[] }[];
    expect(d?.ok).toBe(true);
    expect(d?.checks).toEqual([expect.stringMatching(/^postgres\.dump: restored into postgres: 1 tables, 1500 rows$/), expect.stringMatching(/^volume-pgdata(\.tar\.gz)?: \d+ files, \d+ B restored$/)]);
    expect(await f.containers()).toEqual(running);
    expect(await tableChecksum(dbPort, 'items')).toBe(checksum);
  });

  it('a failing update of a version that migrates data is rolled back with the data restored', async () => {
    const before = await deployDb(3000);
    const oldId = (await f.containers())[0]?.id;
    // The "new version" migrates (deletes rows, checkpoints) and then crashes.
    const migrate = `/usr/local/bin/docker-entrypoint.sh & until pg_isready -q -h 127.0.0.1 -p ${dbPort}; do :; done; psql -h 127.0.0.1 -p ${dbPort} -U postgres -c 'DELETE FROM items' -c 'CHECKPOINT'; exit 1`;
    f.writeDesired(dbYaml({ command: ['/bin/sh', '-c', migrate] }));
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.updateFailed);
    // It got as far as its migration: the verdict is its exit, after the DELETE.
    expect(r.stdout).toMatch(/rolled back \(data restored from backup \S+\): container exited with code 1; output: .*DELETE 3000/);
    await waitForPostgres(dbPort);
    expect(await tableChecksum(dbPort, 'items')).toBe(before);
    expect((await f.containers()).map((c) => c.id)).toEqual([oldId]);
    const t = (await f.status()).services.find((x) => x.name === 'db')?.lastTransaction;
    expect(t).toMatchObject({ result: 'rolled-back', backup: expect.any(String) });
    expect((await backups()).map((b) => b.reason)).toEqual(['update']);
  });

  it("an application's migration of another service's database is undone with pg_restore", async () => {
    const before = await deployDb(2000);
    const appYaml = (image: string, entry?: string[]) =>
      [
        '  app:',
        `    image: ${image}`,
        '    network_mode: host',
        '    depends_on: [db]',
        ...(entry ? [`    entrypoint: ${JSON.stringify(entry)}`] : ['    init: true', '    environment: {PORT: "' + f.port + '"}']),
        '    x-agent:',
        '      backup:',
        '        postgres: {service: db, database: postgres, user: postgres}',
        '        restoreOnRollback: true',
        '      health: {timeout: 30s, stabilization: 1s}',
      ].join('\n');
    f.writeDesired(dbYaml({ extraServices: appYaml(f.image('1.0.0')) }));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const migrate = `psql -h 127.0.0.1 -p ${dbPort} -U postgres -c 'UPDATE items SET label = NULL'; exit 1`;
    f.writeDesired(dbYaml({ extraServices: appYaml(pg.pinned, ['/bin/sh', '-c', migrate]) }));
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.updateFailed);
    expect(await tableChecksum(dbPort, 'items')).toBe(before);
    expect(await f.page()).toBe('1.0.0');
  });

  it('a dump that fails aborts the update before anything changes', async () => {
    await deployDb(10);
    const before = await f.containers();
    f.writeDesired(dbYaml({ database: 'nosuchdb', env: { CHANGED: '1' } }));
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    expect(r.stdout).toMatch(/backup failed, update aborted, nothing changed: pg_dump of nosuchdb exited with code 1/);
    expect(await f.containers()).toEqual(before);
    const s = await f.status();
    expect(s.services[0]?.held).toBeUndefined();
  });

  it('disk full while archiving: the old container is started again, nothing changed', async () => {
    await deployDb(10);
    const before = await f.containers();
    const tmpfs = await mountTmpfs(256 * 1024);
    try {
      f.writeDesired(dbYaml({ env: { CHANGED: '1' } }));
      const r = await f.run('apply', [], { AGENT_BACKUP_DIR: tmpfs.dir });
      expect(r.code).toBe(EXIT.updateFailed);
      expect(r.stdout).toMatch(format === 'restic' ? /backup failed, update aborted, nothing changed: .*no space left on device/ : /backup failed, update aborted, nothing changed: .*disk full/);
      expect((await f.containers()).map((c) => [c.id, c.state])).toEqual(before.map((c) => [c.id, 'running']));
      await waitForPostgres(dbPort);
      expect(await psql(dbPort, 'SELECT count(*) FROM items')).toBe('10');
    } finally {
      await tmpfs.unmount();
    }
  });

});

describe('plain archives (local)', () => {
  it('a backup interrupted half-way is not listed, and the next backup removes its leftovers', async () => {
    await deployDb(100);
    const killed = await f.run('backup create', ['db'], { AGENT_FAILPOINTS: 'backup:before-manifest' });
    expect(killed.signal).toBe('SIGKILL');
    expect(await backups()).toEqual([]);
    const store = join(f.stateDir, 'backups');
    const leftovers = (await import('node:fs')).readdirSync(join(store, 'test-host'), { recursive: true }) as string[];
    expect(leftovers.some((p) => p.endsWith('postgres.dump'))).toBe(true);
    // The container stopped for the archive was started again even though the agent died? It
    // was not: drift repair brings it back at the next apply.
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const next = await f.run('backup create', ['db']);
    expect(next.code, next.stderr).toBe(EXIT.ok);
    const after = (await import('node:fs')).readdirSync(join(store, 'test-host', f.stack, 'db'));
    expect(after).toHaveLength(1);
    expect(await backups()).toHaveLength(1);
  });

  it('refuses to restore an archive with ../ paths, and verify says why', async () => {
    await deployDb(10);
    const r = await f.run('backup create', ['db', '--json']);
    const made = JSON.parse(r.stdout).backups[0] as { id: string; artifacts: { file: string; sha256: string; bytes: number }[] };
    // Replace the volume archive with one that escapes its directory, and make the manifest agree.
    const evil = pack();
    const chunks: Buffer[] = [];
    evil.on('data', (c: unknown) => chunks.push(c as Buffer));
    evil.entry({ name: 'data/../../../tmp/pwned', size: 5 }, 'owned');
    evil.finalize();
    await new Promise<void>((res) => evil.on('end', () => res()));
    const gz = gzipSync(Buffer.concat(chunks));
    const dir = join(f.stateDir, 'backups', 'test-host', f.stack, 'db', made.id);
    writeFileSync(join(dir, 'volume-pgdata.tar.gz'), gz);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const art = manifest.artifacts.find((a: { file: string }) => a.file === 'volume-pgdata.tar.gz');
    art.sha256 = createHash('sha256').update(gz).digest('hex');
    art.bytes = gz.length;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const v = await f.run('backup verify', [made.id]);
    expect(v.code).toBe(EXIT.updateFailed);
    expect(v.stdout).toMatch(/volume-pgdata\.tar\.gz\s+FAILED.*(parent|escape|outside)/);
    // The manifest was edited: its authentication code says so, and the restore stops there.
    const refused = await f.run('restore', [made.id, '--yes', '--no-safety-backup']);
    expect(refused.code).toBe(EXIT.usage);
    expect(refused.stderr).toMatch(/its manifest does not match its authentication code/);
    // Accepted anyway, the archive's own check refuses it before anything is overwritten.
    const restore = await f.run('restore', [made.id, '--yes', '--no-safety-backup', '--accept-unauthenticated']);
    expect(restore.code).not.toBe(EXIT.ok);
    expect(restore.stderr).toMatch(/cannot be restored/);
    expect(await psql(dbPort, 'SELECT count(*) FROM items')).toBe('10');
  });
});

describe('S3 store', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['backups'] });
  });
  afterEach(async () => {
    await s3.resume().catch(() => undefined);
  });

  const s3Env = () => ({ AGENT_BACKUP_S3_BUCKET: 'backups', AGENT_BACKUP_S3_PREFIX: 'hosts', AGENT_BACKUP_S3_ENDPOINT: s3.endpoint, AGENT_BACKUP_S3_REGION: s3.region, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey });

  it('streams a volume larger than one multipart part, verifies it, restores it', async () => {
    const yaml = `name: ${f.stack}\nservices:\n  files:\n    image: ${f.image('1.0.0')}\n    network_mode: host\n    init: true\n    environment: {PORT: "${f.port}"}\n    volumes: ["files:/data"]\n    x-agent:\n      backup: {volumes: [files], consistency: live}\n      health: {timeout: 20s, stabilization: 1s}\nvolumes:\n  files: {}\n`;
    f.writeDesired(yaml);
    expect((await f.run('apply', [], s3Env())).code).toBe(EXIT.ok);
    const [c] = await f.containers();
    const container = f.h.docker.getContainer(c!.id);
    const sh = async (cmd: string) => {
      // A TTY exec: plain output, no multiplexing frames to strip.
      const exec = await container.exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, Tty: true });
      const stream = await exec.start({ Tty: true });
      const out: Buffer[] = [];
      stream.on('data', (d: Buffer) => out.push(d));
      await new Promise((r) => stream.on('end', r));
      return Buffer.concat(out).toString('utf8').trim();
    };
    await sh('dd if=/dev/urandom of=/data/blob bs=1M count=12 2>/dev/null');
    const sum = await sh('sha256sum /data/blob');
    const created = await f.run('backup create', ['--json'], { ...s3Env(), AGENT_BACKUP_S3_PREFIX: 'hosts' });
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const made = JSON.parse(created.stdout).backups[0] as { id: string; store: string; artifacts: { bytes: number }[] };
    expect(made.store).toBe('s3://backups/hosts');
    expect(made.artifacts[0]!.bytes).toBeGreaterThan(8 * 1024 * 1024);
    const listed = await s3.client().send(new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: 'backups', Prefix: `hosts/test-host/${f.stack}/files/${made.id}/` }));
    expect(listed.Contents?.map((o) => o.Key?.split('/').pop()).sort()).toEqual(['manifest.json', 'volume-files.tar.gz']);
    expect((await f.run('backup verify', [made.id], s3Env())).code).toBe(EXIT.ok);
    await sh('rm /data/blob; echo junk > /data/other');
    const restored = await f.run('restore', [made.id, '--yes'], s3Env());
    expect(restored.code, restored.stdout + restored.stderr).toBe(EXIT.ok);
    const [c2] = await f.containers();
    expect(c2!.id).toBe(c!.id);
    expect(await sh('sha256sum /data/blob')).toBe(sum);
    expect(await sh('ls /data')).toBe('blob');
  });

  it('store down: the update is aborted before anything changes, and retried later', async () => {
    await deployDb(10);
    const before = await f.containers();
    await s3.pause();
    f.writeDesired(dbYaml({ env: { CHANGED: '1' } }));
    const r = await f.run('apply', [], s3Env());
    expect(r.code).toBe(EXIT.updateFailed);
    expect(r.stdout).toMatch(/backup failed, update aborted, nothing changed: s3:\/\/backups\/hosts: bucket not reachable/);
    expect(await f.containers()).toEqual(before);
    await s3.resume();
    const again = await f.run('apply', [], s3Env());
    expect(again.code, again.stdout + again.stderr).toBe(EXIT.ok);
    expect((await f.containers())[0]?.id).not.toBe(before[0]?.id);
  });
});

describe('scheduled backups', () => {
  it('agent run backs up on the schedule of the desired state; status shows the job', async () => {
    f.writeDesired(dbYaml().replace('  backups: {retention: {keep: 3}}', '  backups: {retention: {keep: 3}}\n  jobs:\n    frequent: {schedule: "*/3 * * * * *", timezone: Europe/Berlin, backup: {services: [db]}}'));
    const agent = f.start('run', ['--interval', '1h', '--listen', '']);
    try {
      await eventually('a scheduled backup', async () => (await backups()).some((b) => b.reason === 'scheduled'), 90_000, 1000);
      const s = await f.status();
      expect(s.jobs[0]).toMatchObject({ name: 'frequent', timezone: 'Europe/Berlin', lastResult: 'succeeded' });
      expect(s.jobs[0]?.nextRunAt).toBeDefined();
    } finally {
      mkdirSync(f.root, { recursive: true });
      const { spawnSync } = await import('node:child_process');
      spawnSync('pkill', ['-TERM', '-f', f.stateDir]);
      await agent.done;
    }
  });
});
