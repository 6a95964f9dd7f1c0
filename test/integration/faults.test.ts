/**
 * Every fault during an update, on one stack: PostgreSQL holding real rows (backed up before
 * each of its updates, restored on rollback) and the web fixture that depends on it, its
 * desired state in Git, notifications to a webhook. The engine and the registry are the test's
 * own, so that it can restart the one and stop the other. Faults: a version that crash-loops
 * (web, and PostgreSQL itself), one that never becomes healthy, the registry down during the
 * pull, the Docker daemon restarted (cleanly, and killed together with the agent) during the
 * health gate, the disk of the backup store full, the S3 backup store down, the Git server down
 * when the revert is pushed, the agent SIGKILLed during the backup, the data restore and the
 * revert commit. After each: each service runs exactly one healthy container (the old version
 * or the new one), every row is there, `agent status --json` and a notification say what
 * happened, and the agent still runs or recovered when started again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../harness/s3-server.js';
import { eventually } from './support/agent-cli.js';
import { FaultStack, lastTx, type StackChange } from './support/fault-stack.js';

let s: FaultStack;

beforeAll(async () => {
  s = await FaultStack.start();
}, 600_000);
afterAll(async () => {
  await s?.stop();
});

/**
 * A failing update of `service`: rolled back to the good spec, reverted exactly once in Git, and
 * reported: update-failed, then revert-pushed with the same reason. (`updateFailed: false`: the
 * agent died after the rollback, before the end of its pass, where a pass's messages are sent.)
 */
async function expectRolledBack(service: string, failedCommit: string, since: number, o: { updateFailed?: boolean } = {}): Promise<void> {
  // The revert of this very commit: an earlier test's revert of the same service is pushed too.
  const st = await s.settle(`the rollback of ${service} and its revert commit`, (v) => {
    const revert = v.services.find((x) => x.name === service)?.revert;
    return revert?.state === 'pushed' && revert.reverts === failedCommit;
  });
  expect(lastTx(st, service)).toMatchObject({ result: 'rolled-back', code: 'HEALTH_CHECK_FAILED' });
  expect(await s.revertsOf(failedCommit)).toHaveLength(1);
  if (o.updateFailed !== false) expect((await s.notified(since, 'update-failed', service))[0]?.title).toContain('failed and was rolled back');
  const [reverted] = await s.notified(since, 'revert-pushed', service);
  expect(reverted?.reason).toBe(lastTx(st, service)?.reason);
  expect(reverted?.details?.reverts).toBe(failedCommit);
}

describe('agent run, backups to a local store', { timeout: 300_000 }, () => {
  beforeAll(() => {
    s.startAgent();
  });
  afterAll(async () => {
    await s.stopAgent();
  });

  it('a web version that crash-loops: rolled back, reverted in Git, reported', async () => {
    const since = s.mark();
    const sha = await s.push('Update web to 1.3.0', { web: { version: '1.3.0' } });
    await expectRolledBack('web', sha, since);
    expect((await s.notified(since, 'update-failed', 'web'))[0]?.reason).toMatch(/exited with code 3/);
  });

  it('a web version that never becomes healthy: rolled back, reverted in Git, reported', async () => {
    const since = s.mark();
    const sha = await s.push('Update web to 1.4.0', { web: { version: '1.4.0' } });
    await expectRolledBack('web', sha, since);
    expect((await s.notified(since, 'update-failed', 'web'))[0]?.reason).toMatch(/unhealthy/);
  });

  it('a PostgreSQL version that crash-loops: rolled back with its volume restored from the backup', async () => {
    const since = s.mark();
    const sha = await s.push('Update PostgreSQL (crashes)', { db: { entrypoint: ['/bin/sh', '-c', 'echo "FATAL: bad config" >&2; exit 1'] } });
    await expectRolledBack('db', sha, since);
    const st = await s.status();
    expect(lastTx(st, 'db')?.reason).toMatch(/^rolled back \(data restored from backup \S+\)/);
    expect(lastTx(st, 'db')?.backup).toBeDefined();
  });

  it('the registry down during the pull: nothing changes, the update is applied once it is back', async () => {
    const since = s.mark();
    const change: StackChange = { web: { version: '1.1.0' }, db: { image: s.pg.next.pinned } };
    await s.registry.pause();
    try {
      await s.push('Update PostgreSQL to 15.9 and web to 1.1.0', change);
      const down = await s.settle('the pull to fail', (v) => lastTx(v, 'db')?.code === 'PULL_FAILED', { inSync: false });
      expect(lastTx(down, 'db')).toMatchObject({ result: 'failed', failedPhase: 'pull' });
      expect(down.services.find((x) => x.name === 'db')?.held).toBeUndefined();
      expect((await s.notified(since, 'update-failed', 'db'))[0]?.reason).toMatch(/pull/);
    } finally {
      await s.registry.resume();
    }
    s.accept(change);
    const st = await s.settle('both updates applied', (v) => lastTx(v, 'web')?.to === s.f.image('1.1.0'));
    expect(lastTx(st, 'db')).toMatchObject({ result: 'succeeded', backup: expect.any(String) });
    expect(lastTx(st, 'web')?.result).toBe('succeeded');
    await s.notified(since, 'update-applied', 'db');
    await s.notified(since, 'update-applied', 'web');
  });

  it('the Docker daemon restarted during the health gate of web: the agent survives and finishes the update', async () => {
    const since = s.mark();
    const change: StackChange = { web: { version: '1.2.0', stabilization: '6s' } };
    await s.push('Update web to 1.2.0', change);
    await eventually('the new web container in its health gate', async () => (await s.managed()).some((c) => c.image === s.f.image('1.2.0') && c.state === 'running'), 90_000, 100);
    await s.engine.restart();
    s.accept(change);
    const st = await s.settle('the update finished after the restart', (v) => lastTx(v, 'web')?.to === s.f.image('1.2.0'));
    expect(lastTx(st, 'web')).toMatchObject({ result: 'succeeded', recovered: true });
    await s.notified(since, 'update-applied', 'web');
  });

  it('the Docker daemon killed during the health gate of PostgreSQL, the agent killed with it: both started again, the update finishes', async () => {
    const since = s.mark();
    const change: StackChange = { db: { env: { TUNING: 'a' }, stabilization: '6s' } };
    const before = (await s.managed()).find((c) => c.service === 'db')?.id;
    await s.push('Tune PostgreSQL', change);
    await eventually('the new db container in its health gate', async () => (await s.managed()).some((c) => c.service === 'db' && c.id !== before && c.state === 'running'), 90_000, 100);
    await s.agent?.stop('SIGKILL');
    await s.engine.restart({ signal: 'SIGKILL' });
    s.startAgent();
    s.accept(change);
    const st = await s.settle('the update finished after the restarts', (v) => lastTx(v, 'db')?.recovered === true);
    expect(lastTx(st, 'db')).toMatchObject({ result: 'succeeded', backup: expect.any(String) });
    await s.notified(since, 'update-applied', 'db');
  });

  it('the disk of the backup store full during the backup of PostgreSQL: nothing changes, the update is applied once there is space', async () => {
    const since = s.mark();
    const before = await s.managed();
    const change: StackChange = { db: { env: { TUNING: 'b' }, stabilization: '1s' } };
    const free = await s.fillStore(16 * 1024);
    try {
      // A retention that keeps every backup: the one it runs before the backup, which deletes the
      // oldest to stay within `keep`, would free the space this test takes away.
      await s.push('Tune PostgreSQL again', { db: { ...change.db, keep: 50 } });
      const full = await s.settle('the backup to fail', (v) => lastTx(v, 'db')?.code === 'BACKUP_FAILED', { inSync: false });
      expect(lastTx(full, 'db')).toMatchObject({ result: 'failed', failedPhase: 'backup' });
      expect(lastTx(full, 'db')?.reason).toMatch(/disk full/);
      expect((await s.managed()).map((c) => c.id)).toEqual(before.map((c) => c.id));
      const [e] = await s.notified(since, 'backup-failed', 'db');
      expect(e?.reason).toMatch(/disk full/);
    } finally {
      free();
    }
    s.accept(change);
    const st = await s.settle('the update applied', (v) => lastTx(v, 'db')?.result === 'succeeded');
    expect(lastTx(st, 'db')?.backup).toBeDefined();
  });
});

describe('agent run, backups to S3', { timeout: 300_000 }, () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['backups'] });
    s.storeEnv = { AGENT_BACKUP_S3_BUCKET: 'backups', AGENT_BACKUP_S3_ENDPOINT: s3.endpoint, AGENT_BACKUP_S3_REGION: s3.region, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey };
    s.startAgent();
  });
  afterAll(async () => {
    await s.stopAgent();
    s.storeEnv = { AGENT_BACKUP_DIR: s.store.dir };
    await s3.stop();
  });

  it('the backup store down during the update of PostgreSQL: nothing changes, the update is applied once it is back', async () => {
    const since = s.mark();
    const before = await s.managed();
    const change: StackChange = { db: { env: { TUNING: 'c' } } };
    await s3.pause();
    try {
      await s.push('Tune PostgreSQL, S3', change);
      const down = await s.settle('the backup to fail', (v) => lastTx(v, 'db')?.code === 'BACKUP_FAILED', { inSync: false });
      expect(lastTx(down, 'db')).toMatchObject({ result: 'failed', failedPhase: 'backup' });
      expect((await s.managed()).map((c) => c.id)).toEqual(before.map((c) => c.id));
      expect((await s.notified(since, 'backup-failed', 'db'))[0]?.reason).toMatch(/not reachable/);
    } finally {
      await s3.resume();
    }
    s.accept(change);
    const st = await s.settle('the update applied', (v) => lastTx(v, 'db')?.result === 'succeeded');
    expect(st.services.find((x) => x.name === 'db')?.lastBackup?.reason).toBe('update');
  });
});

describe('the Git server down when the revert is pushed', { timeout: 300_000 }, () => {
  beforeAll(() => {
    // The agent pauses right before each push of a revert: the test takes the server down then.
    s.startAgent({ AGENT_FAILPOINTS: 'before:revert-push=sleep(3000)' });
  });
  afterAll(async () => {
    await s.stopAgent();
  });

  it('the revert waits, the service stays on its good version, and the revert is pushed exactly once when the server is back', async () => {
    const since = s.mark();
    // The probe is not part of the container: the variable makes it a new spec.
    const sha = await s.push('Update web (broken probe)', { web: { probePath: '/missing', timeout: '5s', env: { BROKEN: 'probe' } } });
    await s.waitLog('failpoint before:revert-push reached');
    await s.git.pause();
    try {
      const down = await s.settle('the push to fail', (v) => v.services.find((x) => x.name === 'web')?.revert?.state === 'pending' && v.source?.error !== undefined, { inSync: false });
      expect(lastTx(down, 'web')).toMatchObject({ result: 'rolled-back', code: 'HEALTH_CHECK_FAILED' });
      expect(down.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });
      await s.notified(since, 'update-failed', 'web');
    } finally {
      await s.git.resume();
    }
    await expectRolledBack('web', sha, since);
    expect(await s.notified(since, 'revert-pushed', 'web')).toHaveLength(1);
  });
});

describe('the agent SIGKILLed during an update, then started again', { timeout: 300_000 }, () => {
  let attempt = 0;
  it.each(['after:backup', 'before:backup-files', 'after:rollback-restore-files', 'after:revert-push'])('killed at %s', async (point) => {
    attempt++;
    const since = s.mark();
    const change: StackChange = point === 'after:revert-push' ? { web: { probePath: '/missing', timeout: '5s', env: { ATTEMPT: String(attempt) } } } : { db: { entrypoint: ['/bin/sh', '-c', 'exit 1'], env: { ATTEMPT: String(attempt) } } };
    const service = change.web ? 'web' : 'db';
    const sha = await s.push(`Update ${service}, attempt ${attempt}`, change);
    const killed = await s.startAgent({ AGENT_FAILPOINTS: point }).done();
    expect(killed.signal, killed.stderr.slice(-2000)).toBe('SIGKILL');
    s.startAgent();
    try {
      await expectRolledBack(service, sha, since, { updateFailed: point !== 'after:revert-push' });
    } finally {
      await s.stopAgent();
    }
  });
});
