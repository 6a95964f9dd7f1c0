/**
 * The restic repository as the agent drives it, with a real PostgreSQL holding real rows: what
 * it stores (encrypted, tagged, deduplicated), and its traps closed: a dump failing half-way, a
 * lock left by a killed restic, a backup interrupted before its manifest, a corrupted pack.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { runToEnd } from '../harness/containers.js';
import { ensurePostgres, psql, tableChecksum, waitForPostgres } from '../harness/postgres-fixture.js';
import type { PostgresImage } from '../harness/postgres.js';
import { freePort, uniqueName } from '../harness/ports.js';
import { harness } from '../harness/provided.js';
import { startS3Server, type S3TestServer } from '../harness/s3-server.js';
import { selfSignedCert } from '../harness/tls-cert.js';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { dbStackYaml, deployDbStack, listBackups } from './support/db-stack.js';

const h = harness();
let pg: PostgresImage;
let f: AgentFixture;
let dbPort: number;

beforeAll(async () => {
  pg = await ensurePostgres(h);
}, 300_000);
beforeEach(async () => {
  f = await AgentFixture.create();
  f.gitEnv.AGENT_BACKUP_RESTIC_IMAGE = h.resticImage.pinned;
  dbPort = await freePort();
});
afterEach(async () => {
  await f.cleanup();
});

const repoDir = () => join(f.stateDir, 'restic');

/** restic run by the test itself on the agent's repository, with the agent's password file. */
async function restic(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runToEnd(h.docker, {
    image: h.resticImage.pinned,
    cmd: ['--repo', '/repo', '--password-file', '/pw', '--no-cache', ...args],
    binds: [`${repoDir()}:/repo`, `${join(f.stateDir, 'restic-password')}:/pw:ro`],
    labelValue: 'restic-test',
  });
}

async function snapshots(): Promise<{ short_id: string; tags: string[]; paths: string[] }[]> {
  const r = await restic(['snapshots', '--json', '--no-lock']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) ?? [];
}

describe('restic repository', () => {
  it('is created with a 0600 password, encrypts, tags every snapshot, and a second backup adds a fraction', async () => {
    await deployDbStack(f, pg, dbPort, 200_000);
    const first = await f.run('backup create', ['db', '--json']);
    expect(first.code, first.stderr).toBe(EXIT.ok);
    expect(first.stderr).toMatch(/Generated the restic repository password/);
    expect(statSync(join(f.stateDir, 'restic-password')).mode & 0o777).toBe(0o600);
    const [one] = JSON.parse(first.stdout).backups as { id: string; image: string; artifacts: { file: string; bytes: number; added: number; snapshot: string }[] }[];

    // encrypted: no row text anywhere in the repository's files
    const files = readdirSync(repoDir(), { recursive: true }).map(String).filter((p) => statSync(join(repoDir(), p)).isFile());
    expect(files.some((p) => p.startsWith('data/'))).toBe(true);
    for (const p of files) expect(readFileSync(join(repoDir(), p)).includes('row 1999 plain')).toBe(false);

    // every artifact is a snapshot tagged with stack, service, artifact, image digest and reason; the manifest last
    const snaps = await snapshots();
    expect(snaps.map((s) => s.tags.find((t) => t.startsWith('artifact='))).sort()).toEqual(['artifact=manifest', 'artifact=postgres.dump', 'artifact=volume-pgdata']);
    for (const s of snaps) expect(s.tags).toEqual(expect.arrayContaining(['gitops-agent', `backup=${one!.id}`, `stack=${f.stack}`, 'service=db', 'reason=manual', `image=${pg.pinned.split('@')[1]}`]));

    // 1 % of the rows changed, the newest ones (as an application's work usually is): the
    // second backup adds a small fraction of what it read. (Changes spread evenly over the whole
    // table would touch every chunk of restic's 1 MiB average: no dump format deduplicates those.)
    await psql(dbPort, "UPDATE items SET name = name || '-changed' WHERE id > 198000");
    const second = await f.run('backup create', ['db', '--json']);
    expect(second.code, second.stderr).toBe(EXIT.ok);
    const [two] = JSON.parse(second.stdout).backups as typeof one[];
    const dump = two!.artifacts.find((a) => a.file === 'postgres.dump')!;
    const volume = two!.artifacts.find((a) => a.file === 'volume-pgdata')!;
    console.log(`[restic] dump ${dump.bytes} B read, ${dump.added} B added; volume ${volume.bytes} B read, ${volume.added} B added (first: ${one!.artifacts.map((a) => `${a.file} ${a.added}`).join(', ')})`);
    expect(dump.added).toBeLessThan(dump.bytes / 4);
    expect(volume.added).toBeLessThan(volume.bytes / 4);
    expect((await listBackups(f)).map((b) => b.id)).toEqual([two!.id, one!.id]);
    const status = await f.status();
    expect(status.services.find((x) => x.name === 'db')?.lastBackup).toMatchObject({ id: two!.id, format: 'restic', added: dump.added + volume.added });
    expect((await f.run('status')).stdout).toMatch(/db: last manual backup \S+ at .*, [\d.]+ MiB \([\d.]+ MiB new in the repository\)/);
  });

  it('a pg_dump that fails half-way leaves no snapshot, and the update is aborted with nothing changed', async () => {
    await deployDbStack(f, pg, dbPort, 5000);
    expect((await f.run('backup create', ['db'])).code).toBe(EXIT.ok);
    const before = (await snapshots()).length;
    const containers = await f.containers();
    // pg_dump writes the table of contents and the rows of items, then fails on the next table
    // (row-level security, which it refuses to dump for a user the policy applies to): restic
    // alone would keep the truncated stream as a snapshot.
    await psql(dbPort, 'CREATE TABLE zz_rls (x int); INSERT INTO zz_rls VALUES (1); ALTER TABLE zz_rls ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON zz_rls USING (true); CREATE ROLE dumper LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO dumper');
    const yaml = dbStackYaml(f, pg, dbPort, { env: { CHANGED: '1' } }).replace('postgres: {database: postgres, user: postgres}', 'postgres: {database: postgres, user: dumper}');
    f.writeDesired(yaml);
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.updateFailed);
    expect(r.stdout).toMatch(/backup failed, update aborted, nothing changed: pg_dump of postgres exited with code 1: .*row-level security/);
    expect(await f.containers()).toEqual(containers);
    expect((await snapshots()).length).toBe(before);
  });

  it('retention forgets old backups and prunes their data; the newest is kept', async () => {
    f.writeDesired(dbStackYaml(f, pg, dbPort).replace('{retention: {keep: 3}}', '{retention: {keep: 1}}'));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await waitForPostgres(dbPort);
    const ids: string[] = [];
    let last = '';
    for (let i = 0; i < 3; i++) {
      await psql(dbPort, `CREATE TABLE t${i} AS SELECT generate_series(1, 20000) AS x`);
      const r = await f.run('backup create', ['db', '--json']);
      expect(r.code, r.stderr).toBe(EXIT.ok);
      ids.push((JSON.parse(r.stdout).backups[0] as { id: string }).id);
      last = r.stderr;
    }
    expect(last).toMatch(/Old backups deleted by retention/);
    expect(last).toMatch(/restic repository pruned/);
    // keep 1: each backup's retention, run before it, keeps only the newest complete one
    expect((await listBackups(f)).map((b) => b.id)).toEqual([ids[2], ids[1]]);
    expect(new Set((await snapshots()).map((s) => s.tags.find((t) => t.startsWith('backup='))))).toEqual(new Set([`backup=${ids[2]}`, `backup=${ids[1]}`]));
    expect((await restic(['check'])).code).toBe(0);
  });

  it('lists from the repository directory and its index without running restic, sees what changed beside it, and a wrong password refuses the next update', async () => {
    await deployDbStack(f, pg, dbPort, 100);
    const made = await f.run('backup create', ['db', '--json']);
    expect(made.code, made.stderr).toBe(EXIT.ok);
    const resticRuns = (stderr: string) => stderr.split('\n').filter((l) => l.includes('"msg":"restic"')).map((l) => (JSON.parse(l) as { command: string }).command);
    const list = async () => {
      const r = await f.run('backup list', ['--json'], { AGENT_LOG_LEVEL: 'debug' });
      expect(r.code, r.stderr).toBe(EXIT.ok);
      return { ids: (JSON.parse(r.stdout) as { id: string }[]).map((b) => b.id), runs: resticRuns(r.stderr) };
    };
    // the snapshots this agent made are in its index: nothing to ask restic
    expect(await list()).toEqual({ ids: [JSON.parse(made.stdout).backups[0].id], runs: [] });
    // a snapshot forgotten beside the agent is gone from the directory: still nothing to ask
    const manifest = (await snapshots()).find((s) => s.tags.includes('artifact=manifest'))!;
    expect((await restic(['forget', manifest.short_id])).code).toBe(0);
    expect(await list()).toEqual({ ids: [], runs: [] });
    // one the index does not know (made beside it): restic lists the repository once, then the index knows it
    expect((await restic(['backup', '--host', 'elsewhere', '/pw'])).code).toBe(0);
    expect(await list()).toEqual({ ids: [], runs: ['snapshots'] });
    expect(await list()).toEqual({ ids: [], runs: [] });

    // the password file replaced: the repository no longer opens, and a stateful update is refused before it starts
    const containers = await f.containers();
    writeFileSync(join(f.stateDir, 'restic-password'), 'not-the-password\n', { mode: 0o600 });
    f.writeDesired(dbStackYaml(f, pg, dbPort, { env: { CHANGED: '1' } }));
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.updateFailed);
    expect(r.stdout).toMatch(/cannot open the restic repository .*wrong password|cannot open the restic repository .*no key found/);
    expect(await f.containers()).toEqual(containers);
  });

  it("an image built by `agent backup restic-image` from the host's restic, pinned by its id, goes into a fresh configuration and backs up", async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'restic-image-')), 'config.yaml');
    writeFileSync(config, `stateDir: ${f.stateDir}\n#backup:\n#  dir: /srv/backups\n`);
    const built = await f.run('backup restic-image', ['--write-config', config, '--json']);
    expect(built.code, built.stderr).toBe(EXIT.ok);
    const image = JSON.parse(built.stdout) as { id: string; ref: string; version: string };
    expect(image).toMatchObject({ id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), ref: 'gitops-agent/restic:0.14.0', version: '0.14.0' });
    expect(readFileSync(config, 'utf8')).toMatch(new RegExp(`\\nbackup:\\n  restic:\\n    image: ${image.id}\\n$`));
    // the same binary gives the same image; a configuration with a backup: section is left alone
    const again = await f.run('backup restic-image', ['--write-config', config]);
    expect(again.code).toBe(EXIT.usage);
    expect(again.stderr).toContain(`has a backup: section already: set backup.restic.image: ${image.id} in it by hand`);

    delete f.gitEnv.AGENT_BACKUP_RESTIC_IMAGE;
    await deployDbStack(f, pg, dbPort, 100);
    const r = await f.run('backup create', ['db', '--json', '--config', config]);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const made = JSON.parse(r.stdout).backups[0] as { id: string; format: string };
    expect(made.format).toBe('restic');
    expect((await snapshots()).filter((s) => s.tags.includes(`backup=${made.id}`))).toHaveLength(3);
    // the image gone from the engine: nothing to pull it from, and the error says how to make it again
    await h.docker.getImage(image.id).remove({ force: true });
    const gone = await f.run('backup create', ['db', '--config', config]);
    expect(gone.code).not.toBe(EXIT.ok);
    expect(gone.stdout + gone.stderr).toMatch(/the restic image sha256:[0-9a-f]{64} is not on this engine: build it again with `agent backup restic-image`/);
  });

  it('a lock left by a killed restic is removed, and the next backup and check succeed', async () => {
    await deployDbStack(f, pg, dbPort, 100);
    expect((await f.run('backup create', ['db'])).code).toBe(EXIT.ok);
    // a restic backup reading a stdin that never ends, killed: its lock stays
    const name = uniqueName('restic-killed');
    const c = await h.docker.createContainer({
      name,
      Image: h.resticImage.pinned,
      Cmd: ['--repo', '/repo', '--password-file', '/pw', '--no-cache', 'backup', '--stdin', '--host', 'test-host'],
      OpenStdin: true,
      Labels: { 'gadt.test': 'restic-test' },
      HostConfig: { NetworkMode: 'none', Binds: [`${repoDir()}:/repo`, `${join(f.stateDir, 'restic-password')}:/pw:ro`] },
    });
    await c.start();
    const lockDir = join(repoDir(), 'locks');
    for (let i = 0; i < 100 && readdirSync(lockDir).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await c.kill();
    await c.remove({ force: true });
    expect(readdirSync(lockDir).length).toBeGreaterThan(0);
    expect((await restic(['check'])).code).not.toBe(0);

    const next = await f.run('backup create', ['db']);
    expect(next.code, next.stderr).toBe(EXIT.ok);
    expect(next.stderr).toMatch(/Removing the restic lock a killed run left/);
    expect((await restic(['check'])).code).toBe(0);
  });

  it('restic killed in the middle of an update\'s backup: the update is aborted with nothing changed, and the next one succeeds', async () => {
    f.writeDesired(f.webYaml({ version: '1.0.0', backup: { restoreOnRollback: true } }));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await f.inService('head -c 400000000 /dev/urandom > /data/big && echo kept > /data/marker');
    const before = await f.containers();
    f.writeDesired(f.webYaml({ version: '1.1.0', backup: { restoreOnRollback: true } }));
    const agent = f.start('apply');
    const killed = await eventually('restic to be backing up the volume', async () => {
      const list = await h.docker.listContainers({ filters: { label: ['io.gitops-agent.role=restic'] } });
      const c = list.find((x) => x.Command.includes('backup') && x.Mounts.some((m) => m.Destination.endsWith('/volume-data')));
      if (!c) return undefined;
      await h.docker.getContainer(c.Id).kill();
      return c.Id;
    }, 60_000, 20);
    const r = await agent.done;
    expect(killed).toBeDefined();
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.updateFailed);
    expect(r.stdout).toMatch(/backup failed, update aborted, nothing changed: .*restic exited with code 137/);
    expect((await f.containers()).map((c) => [c.id, c.state])).toEqual(before.map((c) => [c.id, 'running']));
    expect(await f.page()).toBe('1.0.0');
    expect(await listBackups(f)).toEqual([]);

    const next = await f.run('apply');
    expect(next.code, next.stdout + next.stderr).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.1.0');
    expect(await f.inService('cat /data/marker')).toBe('kept');
    expect(await listBackups(f)).toHaveLength(1);
    expect((await restic(['check'])).code).toBe(0);
  });

  it('a backup interrupted before its manifest is not listed, and the next backup forgets its snapshots', async () => {
    await deployDbStack(f, pg, dbPort, 100);
    const killed = await f.run('backup create', ['db'], { AGENT_FAILPOINTS: 'backup:before-manifest' });
    expect(killed.signal).toBe('SIGKILL');
    expect(await listBackups(f)).toEqual([]);
    const leftovers = (await snapshots()).map((s) => s.tags.find((t) => t.startsWith('backup=')));
    expect(leftovers.length).toBe(2);
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const next = await f.run('backup create', ['db', '--json']);
    expect(next.code, next.stderr).toBe(EXIT.ok);
    const made = JSON.parse(next.stdout).backups[0] as { id: string };
    expect(new Set((await snapshots()).map((s) => s.tags.find((t) => t.startsWith('backup='))))).toEqual(new Set([`backup=${made.id}`]));
    expect(await listBackups(f)).toHaveLength(1);
  });

  it('verify reads the data back and finds a corrupted pack; the restore refuses it and changes nothing', async () => {
    await deployDbStack(f, pg, dbPort, 2000);
    const r = await f.run('backup create', ['db', '--json']);
    const made = JSON.parse(r.stdout).backups[0] as { id: string };
    expect((await f.run('backup verify', [made.id])).code).toBe(EXIT.ok);
    // flip bytes in the middle of every pack file
    const packs = readdirSync(join(repoDir(), 'data'), { recursive: true }).map(String).filter((p) => statSync(join(repoDir(), 'data', p)).isFile());
    expect(packs.length).toBeGreaterThan(0);
    for (const p of packs) {
      const file = join(repoDir(), 'data', p);
      const buf = readFileSync(file);
      for (let i = Math.floor(buf.length / 2); i < Math.min(buf.length, Math.floor(buf.length / 2) + 64); i++) buf[i] = buf[i]! ^ 0xff;
      writeFileSync(file, buf);
    }
    const v = await f.run('backup verify', [made.id]);
    expect(v.code).toBe(EXIT.updateFailed);
    expect(v.stdout).toMatch(/postgres\.dump\s+FAILED/);
    const before = await tableChecksum(dbPort, 'items');
    const restore = await f.run('restore', [made.id, '--yes', '--no-safety-backup']);
    expect(restore.code).not.toBe(EXIT.ok);
    await waitForPostgres(dbPort);
    expect(await tableChecksum(dbPort, 'items')).toBe(before);
  });
});

describe('restore drills (restic)', () => {
  it('restores the latest backup into a scratch server and volume, never touching what runs; status and the plan tell', async () => {
    const checksum = await deployDbStack(f, pg, dbPort, 3000);
    expect((await f.run('backup create', ['db'])).code).toBe(EXIT.ok);
    const [running] = await f.containers();
    const drill = await f.run('backup drill', ['--json']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(EXIT.ok);
    const [d] = JSON.parse(drill.stdout).drills as { service: string; ok: boolean; checks: string[]; bytes: number; backup: string }[];
    expect(d).toMatchObject({ service: 'db', ok: true });
    expect(d!.checks[0]).toMatch(/^postgres\.dump: restored into postgres: 1 tables, 3000 rows$/);
    expect(d!.checks[1]).toMatch(/^volume-pgdata: \d+ files, \d+ B restored$/);
    // what runs was not touched: same container, never restarted, same rows; no scratch left
    const [after] = await f.containers();
    expect(after).toEqual(running);
    expect(await tableChecksum(dbPort, 'items')).toBe(checksum);
    expect((await h.docker.listVolumes()).Volumes?.filter((v) => /gitops-agent-(drill|restore)-/.test(v.Name)) ?? []).toEqual([]);
    const s = await f.status();
    expect(s.services.find((x) => x.name === 'db')?.lastDrill).toMatchObject({ ok: true, backup: d!.backup });
    expect((await f.run('status')).stdout).toMatch(/db: last restore drill .* passed \(backup \S+\), [\d.]+ [KMG]?i?B, \d+ s/);

    // the operator's own check: a query that must print t
    const strict = (query: string) => dbStackYaml(f, pg, dbPort).replace('        volumes: [pgdata]', `        volumes: [pgdata]\n        drill: {query: "${query}"}`);
    f.writeDesired(strict('SELECT count(*) = 3000 FROM items'));
    expect((await f.run('backup drill', ['db'])).code).toBe(EXIT.ok);
    f.writeDesired(strict('SELECT count(*) > 5000 FROM items'));
    const failed = await f.run('backup drill', ['db']);
    expect(failed.code).toBe(EXIT.updateFailed);
    expect(failed.stdout).toMatch(/db\s+FAILED .*the drill query on the restored postgres printed "f", not t/);
    expect((await f.run('status')).stdout).toMatch(/db: last restore drill .* FAILED/);
    // an update of that service now warns in the plan
    f.writeDesired(strict('SELECT count(*) > 5000 FROM items').replace('      PGPORT:', '      CHANGED: "1"\n      PGPORT:'));
    const plan = await f.run('plan');
    expect(plan.stdout).toMatch(/warning: the last restore drill .* FAILED: the drill query/);
  });

  it('runs on the schedule of the desired state; status shows the job and the drill', async () => {
    f.writeDesired(dbStackYaml(f, pg, dbPort).replace('  backups: {retention: {keep: 3}}', '  backups: {retention: {keep: 3}}\n  jobs:\n    drills: {schedule: "*/3 * * * * *", drill: {services: [db]}}'));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await waitForPostgres(dbPort);
    await psql(dbPort, 'CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 42)');
    expect((await f.run('backup create', ['db'])).code).toBe(EXIT.ok);
    const agent = f.start('run', ['--interval', '1h', '--listen', '']);
    try {
      const s = await eventually('a scheduled drill', async () => {
        const v = await f.status();
        return v.services.find((x) => x.name === 'db')?.lastDrill?.ok && v.jobs[0]?.lastResult === 'succeeded' ? v : undefined;
      }, 90_000, 1000);
      expect(s.jobs[0]?.lastMessage).toMatch(/restore drill passed: db \(/);
      expect(s.services[0]?.lastDrill?.checks[0]).toMatch(/1 tables, 42 rows/);
    } finally {
      const { spawnSync } = await import('node:child_process');
      spawnSync('pkill', ['-TERM', '-f', f.stateDir]);
      await agent.done;
    }
  });
});

describe('restic repository in S3 (s3rver over TLS)', () => {
  let s3: S3TestServer;
  let caFile: string;
  beforeAll(async () => {
    const tls = await selfSignedCert();
    s3 = await startS3Server({ buckets: ['backups'], tls });
    caFile = join(mkdtempSync(join(tmpdir(), 'gadt-ca-')), 'ca.pem');
    writeFileSync(caFile, tls.cert);
  });
  afterAll(async () => {
    await s3?.stop();
  });
  const s3Env = () => ({ AGENT_BACKUP_RESTIC_S3_ENDPOINT: s3.endpoint, AGENT_BACKUP_RESTIC_S3_BUCKET: 'backups', AGENT_BACKUP_RESTIC_S3_PREFIX: `hosts/${f.stack}`, AGENT_BACKUP_RESTIC_S3_CA_CERT_FILE: caFile, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: s3.region });

  it('backs up to S3, restores the rows from it; S3 down aborts an update with nothing changed', async () => {
    Object.assign(f.gitEnv, s3Env());
    const checksum = await deployDbStack(f, pg, dbPort, 4000);
    const created = await f.run('backup create', ['db', '--json']);
    expect(created.code, created.stderr).toBe(EXIT.ok);
    const made = JSON.parse(created.stdout).backups[0] as { id: string; store: string };
    expect(made.store).toBe(`restic:${s3.endpoint}/backups/hosts/${f.stack}`);
    // the repository is in the bucket under its prefix (s3rver keeps each object in a folder of its
    // key); nothing in the state directory holds the credentials restic was handed
    const objects = readdirSync(join(s3.dir, 'backups'), { recursive: true }).map(String);
    expect(objects.some((p) => p.startsWith(`hosts/${f.stack}/config`))).toBe(true);
    expect(objects.some((p) => p.startsWith(`hosts/${f.stack}/data/`))).toBe(true);
    expect(existsSync(join(f.stateDir, 'restic'))).toBe(false);
    for (const p of readdirSync(f.stateDir, { recursive: true }).map(String)) {
      const file = join(f.stateDir, p);
      if (statSync(file).isFile()) expect(readFileSync(file, 'utf8').includes('aws_secret_access_key'), p).toBe(false);
    }
    expect((await f.run('backup verify', [made.id])).code).toBe(EXIT.ok);

    await psql(dbPort, 'DROP TABLE items');
    const restored = await f.run('restore', [made.id, '--yes', '--no-safety-backup']);
    expect(restored.code, restored.stdout + restored.stderr).toBe(EXIT.ok);
    await waitForPostgres(dbPort);
    expect(await tableChecksum(dbPort, 'items')).toBe(checksum);

    const before = await f.containers();
    await s3.pause();
    try {
      f.writeDesired(dbStackYaml(f, pg, dbPort, { env: { CHANGED: '1' } }));
      const r = await f.run('apply');
      expect(r.code).toBe(EXIT.updateFailed);
      expect(r.stdout).toMatch(/backup failed, update aborted, nothing changed: .*restic/);
      expect((await f.containers()).map((c) => [c.id, c.state])).toEqual(before.map((c) => [c.id, 'running']));
    } finally {
      await s3.resume();
    }
    const again = await f.run('apply');
    expect(again.code, again.stdout + again.stderr).toBe(EXIT.ok);
  });
});
