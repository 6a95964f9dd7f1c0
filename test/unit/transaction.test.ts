import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/core/errors.js';
import { asImageRef } from '../../agent/core/ids.js';
import { LABELS } from '../../agent/core/labels.js';
import { hashSpec } from '../../agent/desired/load.js';
import type { AgentOptions, ContainerSpec } from '../../agent/model/desired.js';
import { runHealthGate } from '../../agent/health/gate.js';
import { newTxId, resumeTransaction, runTransaction, type TransactionOutcome, type TransactionRequest } from '../../agent/apply/transaction.js';
import { previousContainerName } from '../../agent/core/labels.js';
import { type TxDeps } from '../../agent/apply/types.js';
import { noBackup, type TxBackup } from '../../agent/ports/tx-backup.js';
import { FORWARD_PHASES, ROLLBACK_PHASES } from '../../agent/model/journal.js';
import type { StepTarget } from '../../agent/model/plan.js';
import { JournalStore } from '../../agent/state/journal-store.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker, type Behaviour } from './fakes/fake-docker.js';
import { FakeTxBackup, backupFailure } from './fakes/fake-tx-backup.js';

const V1 = `reg:5000/web:1.0.0@sha256:${'1'.repeat(64)}`;
const V2 = `reg:5000/web:1.1.0@sha256:${'2'.repeat(64)}`;
const agent: AgentOptions = { policy: 'auto', health: { timeoutMs: 5000, stabilizationMs: 1000, probes: [] } };
const spec = (image: string, restart: ContainerSpec['restart'] = 'always'): ContainerSpec => ({ image: asImageRef(image), environment: { SECRET: 's3cr3t' }, ports: [], volumes: [{ type: 'volume', source: 's_data', target: '/data', readOnly: false }], networkMode: 'host', restart, labels: {} });

class Crash extends Error {}

let dir: string;
let docker: FakeDocker;
let journals: JournalStore;
let recorded: TransactionOutcome[];

let txCounter = 0;
let txBackup: TxBackup = noBackup;

function deps(failpoint?: string): TxDeps {
  const clock = fakeClock();
  return {
    docker,
    journals,
    clock,
    log: pino({ level: 'silent' }),
    backup: txBackup,
    failpoint: (name) => {
      if (name === failpoint) throw new Crash(name);
    },
    gate: (id, opts, signal) => runHealthGate({ docker, clock, pollMs: 100 }, id, opts, signal),
    newTxId: () => `tx${++txCounter}`,
  };
}

const target = (hash: string, s: ContainerSpec, revision: string): StepTarget => ({ hash, image: s.image, spec: s, agent, dependsOn: [], revision, externalVolumes: [] });

const record = async (o: TransactionOutcome) => {
  recorded.push(o);
};

async function deployV1(): Promise<void> {
  docker.addImage(V1, 'healthy', true);
  const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: target(hashSpec(spec(V1)), spec(V1), 'r1') }, record);
  expect(out.record.result).toBe('succeeded');
  recorded = [];
}

async function updateRequest(name = 's-web-1'): Promise<TransactionRequest> {
  const old = await docker.inspectContainer(name);
  if (!old) throw new Error('no container to update');
  return { stack: 's', service: 'web', kind: 'update', revision: 'r2', old: { containerId: old.id, name: old.name, image: old.image, hash: old.labels[LABELS.specHash] ?? '', restartPolicy: old.restartPolicy, agent }, target: target(hashSpec(spec(V2)), spec(V2), 'r2') };
}

beforeEach(() => {
  txBackup = noBackup;
  dir = mkdtempSync(join(tmpdir(), 'tx-test-'));
  docker = new FakeDocker();
  journals = new JournalStore(join(dir, 'journal'));
  recorded = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('runTransaction', () => {
  it('first deploy: pulls, creates the volume, starts, passes the gate', async () => {
    docker.addImage(V1);
    const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: target('h1', spec(V1), 'r1') }, record);
    expect(out.record).toMatchObject({ result: 'succeeded', kind: 'create', to: V1 });
    expect(out.held).toBe(false);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: V1 }]);
    expect(docker.volumes.has('s_data')).toBe(true);
    expect(await journals.list()).toEqual([]);
    expect(recorded).toHaveLength(1);
    const c = await docker.inspectContainer('s-web-1');
    expect(c?.labels).toMatchObject({ [LABELS.stack]: 's', [LABELS.service]: 'web', [LABELS.specHash]: 'h1', [LABELS.revision]: 'r1', [LABELS.managed]: 'true' });
  });

  it('update: replaces the old container, which is removed only after the gate', async () => {
    await deployV1();
    docker.addImage(V2);
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'succeeded', from: V1, to: V2 });
    // stop-first: the time from the old container stopped to the new one through its gate
    expect(out.record.downtimeMs).toBeGreaterThanOrEqual(agent.health.stabilizationMs);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: V2 }]);
    const order = docker.calls.filter((c) => /^(stopContainer|startContainer|removeContainer)/.test(c)).map((c) => c.split(' ')[0]);
    expect(order).toEqual(['startContainer', 'stopContainer', 'startContainer', 'removeContainer']);
  });

  it('a tag that does not exist: failed and held, nothing running is touched', async () => {
    await deployV1();
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'failed', code: 'IMAGE_NOT_FOUND', failedPhase: 'pull' });
    expect(out.held).toBe(true);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: V1 }]);
    expect(docker.calls.some((c) => c.startsWith('stopContainer'))).toBe(false);
  });

  it('a transient registry failure is not held', async () => {
    await deployV1();
    docker.addImage(V2);
    docker.failNext('pullImage', new AgentError('PULL_FAILED', 'connection refused'));
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record.result).toBe('failed');
    expect(out.held).toBe(false);
  });

  it.each<[Behaviour, string]>([
    ['crash', 'container exited with code 3'],
    ['unhealthy', 'Docker health check reports unhealthy'],
  ])('a new version that is %s is rolled back to the old container', async (behaviour, reason) => {
    await deployV1();
    docker.addImage(V2, behaviour);
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record.result).toBe('rolled-back');
    expect(out.record.reason).toContain(`rolled back: ${reason}`);
    expect(out.held).toBe(true);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: V1 }]);
    expect((await docker.inspectContainer('s-web-1'))?.restartPolicy).toBe('always');
  });

  it('keeps the crashed container output in the record', async () => {
    await deployV1();
    docker.addImage(V2, 'crash');
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record.reason).toContain('fatal: config invalid');
  });

  it('a failing first deploy leaves nothing running and is reported failed', async () => {
    docker.addImage(V1, 'crash');
    const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: target('h1', spec(V1), 'r1') }, record);
    expect(out.record.result).toBe('failed');
    expect(docker.snapshot()).toEqual([]);
  });

  it('reports rollback-failed when the old version does not come back healthy', async () => {
    await deployV1();
    docker.addImage(V2, 'crash');
    const req = await updateRequest();
    // The old image now crashes too (a host change, a lost volume...).
    docker.registry.set(`reg:5000/web@sha256:${'1'.repeat(64)}`, 'crash');
    for (const c of docker.containers.values()) c.behaviour = 'crash';
    const out = await runTransaction(deps(), req, record);
    expect(out.record.result).toBe('rollback-failed');
    expect(out.record.reason).toMatch(/^rollback failed: container exited/);
  });

  it('refuses to touch a container with the service name that it does not manage', async () => {
    docker.addImage(V1, 'healthy', true);
    await docker.createContainer({ name: 's-web-1', spec: spec(V1), labels: {} });
    const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: target('h1', spec(V1), 'r1') }, record);
    expect(out.record).toMatchObject({ result: 'failed', code: 'CONTAINER_CREATE_FAILED' });
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'created', image: V1 }]);
  });

  it('keeps the old container under a name unique to the transaction (two updates within ten minutes differ)', async () => {
    await deployV1();
    docker.addImage(V2, 'healthy');
    const first = newTxId(Date.parse('2026-12-01T09:41:05Z'));
    const second = newTxId(Date.parse('2026-12-01T09:43:59Z'));
    expect(previousContainerName('s', 'web', first)).not.toBe(previousContainerName('s', 'web', second));
    const d = { ...deps(), newTxId: () => first };
    await runTransaction({ ...d, failpoint: (name) => {
      if (name === 'after:rename-old') throw new Crash(name);
    } }, await updateRequest(), record).catch((err: unknown) => {
      if (!(err instanceof Crash)) throw err;
    });
    expect(docker.snapshot().map((c) => c.name)).toContain(`s-web.prev-${first}`);
  });

  it('a Docker outage after the old container stopped keeps the journal to resume later', async () => {
    await deployV1();
    docker.addImage(V2);
    docker.failNext('startContainer', new AgentError('DOCKER_UNAVAILABLE', 'engine down'));
    await expect(runTransaction(deps(), await updateRequest(), record)).rejects.toMatchObject({ code: 'DOCKER_UNAVAILABLE' });
    const [j] = await journals.list();
    expect(j?.phase).toBe('start-new');
    const out = await resumeTransaction(deps(), j!, record);
    expect(out.record).toMatchObject({ result: 'succeeded', recovered: true });
    expect(docker.running().map((c) => c.spec.image)).toEqual([V2]);
  });
});

const forwardPoints = FORWARD_PHASES.flatMap((p) => [`before:${p}`, `after:${p}`]);
const rollbackPoints = [...FORWARD_PHASES.filter((p) => p !== 'remove-old'), ...ROLLBACK_PHASES].flatMap((p) => [`before:${p}`, `after:${p}`]);

describe("Compose's names and labels", () => {
  it('labels the container as Compose does, so docker compose ps and logs see it', async () => {
    await deployV1();
    const c = await docker.inspectContainer('s-web-1');
    expect(c?.labels).toMatchObject({ 'com.docker.compose.project': 's', 'com.docker.compose.service': 'web', 'com.docker.compose.container-number': '1', 'com.docker.compose.oneoff': 'False' });
  });

  it('creates the container under its container_name', async () => {
    docker.addImage(V1);
    const named = { ...spec(V1), containerName: 'my-web' };
    const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: target(hashSpec(named), named, 'r1') }, record);
    expect(out.record.result).toBe('succeeded');
    expect(docker.snapshot()).toEqual([{ name: 'my-web', status: 'running', image: V1 }]);
  });

  it.each<[Behaviour, string, string]>([
    ['healthy', 'succeeded', 's-web-1'],
    ['crash', 'rolled-back', 's-web'],
  ])("a container under the agent's former name (<stack>-<service>): an update that is %s leaves %s, named %s", async (behaviour, result, name) => {
    docker.addImage(V1, 'healthy', true);
    const id = await docker.createContainer({ name: 's-web', spec: spec(V1), labels: { [LABELS.managed]: 'true', [LABELS.stack]: 's', [LABELS.service]: 'web', [LABELS.specHash]: hashSpec(spec(V1)) } });
    await docker.startContainer(id);
    docker.addImage(V2, behaviour);
    const out = await runTransaction(deps(), await updateRequest('s-web'), record);
    expect(out.record.result).toBe(result);
    expect(docker.snapshot().map((c) => [c.name, c.status])).toEqual([[name, 'running']]);
  });
});

describe('pull_policy', () => {
  const withPolicy = (pullPolicy: 'always' | 'never'): StepTarget => ({ ...target(hashSpec(spec(V1)), spec(V1), 'r1'), agent: { ...agent, pullPolicy } });

  it('always: pulls even an image on the host', async () => {
    docker.addImage(V1, 'healthy', true);
    const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: withPolicy('always') }, record);
    expect(out.record.result).toBe('succeeded');
    expect(docker.calls.filter((c) => c.startsWith('pullImage'))).toHaveLength(1);
  });

  it('never: an image missing from the host fails the update, not held, and nothing is pulled', async () => {
    docker.addImage(V1);
    const out = await runTransaction(deps(), { stack: 's', service: 'web', kind: 'create', revision: 'r1', target: withPolicy('never') }, record);
    expect(out.record).toMatchObject({ result: 'failed', code: 'PULL_FAILED', failedPhase: 'pull' });
    expect(out.held).toBe(false);
    expect(docker.calls.some((c) => c.startsWith('pullImage'))).toBe(false);
  });
});

describe('crash at any journal step, then resume: exactly one version runs', () => {
  it.each(forwardPoints)('good update, killed at %s', async (point) => {
    await deployV1();
    txBackup = new FakeTxBackup(true);
    docker.addImage(V2);
    await expect(runTransaction(deps(point), await updateRequest(), record)).rejects.toBeInstanceOf(Crash);
    const [j] = await journals.list();
    expect(j).toBeDefined();
    const out = await resumeTransaction(deps(), j!, record);
    const running = docker.running();
    expect(running).toHaveLength(1);
    expect(running[0]?.name).toBe('s-web-1');
    const preChange = point === 'before:pull' || point === 'after:pull' || point === 'before:backup' || point === 'after:backup';
    expect(out.record.result).toBe(preChange ? 'interrupted' : 'succeeded');
    expect(running[0]?.spec.image).toBe(preChange ? V1 : V2);
    expect(docker.containers.size).toBe(1);
    expect(await journals.list()).toEqual([]);
  });

  it.each(rollbackPoints)('failing update, killed at %s', async (point) => {
    await deployV1();
    txBackup = new FakeTxBackup(true);
    docker.addImage(V2, 'crash');
    await expect(runTransaction(deps(point), await updateRequest(), record)).rejects.toBeInstanceOf(Crash);
    const [j] = await journals.list();
    const out = await resumeTransaction(deps(), j!, record);
    const running = docker.running();
    expect(running.map((c) => [c.name, c.spec.image])).toEqual([['s-web-1', V1]]);
    expect(docker.containers.size).toBe(1);
    expect(['rolled-back', 'interrupted']).toContain(out.record.result);
    expect((await docker.inspectContainer('s-web-1'))?.restartPolicy).toBe('always');
  });
});

describe('backups in the transaction', () => {
  it('backs up before the change: the dump while the old version runs, files once it is stopped, the manifest once the new one has started', async () => {
    await deployV1();
    docker.addImage(V2);
    const b = new FakeTxBackup(false);
    txBackup = b;
    docker.calls.length = 0;
    let atCommit: string[] = [];
    b.onCommit = () => (atCommit = [...docker.calls]);
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'succeeded', backup: 'b1' });
    expect(b.calls).toEqual(['begin', 'complete', 'commit']);
    const stopAt = docker.calls.findIndex((c) => c.startsWith('stopContainer'));
    const renameAt = docker.calls.findIndex((c) => c.startsWith('renameContainer'));
    expect(stopAt).toBeGreaterThan(-1);
    expect(renameAt).toBeGreaterThan(stopAt);
    // out of the downtime window: the new container was started before the manifest was written
    expect(atCommit.slice(renameAt).some((c) => c.startsWith('startContainer'))).toBe(true);
  });

  it.each([
    ['healthy', 'succeeded', ['begin', 'complete', 'commit', 'commit'], V2],
    ['crash', 'rolled-back', ['begin', 'complete', 'commit', 'commit', 'restoreFiles', 'restoreDatabase'], V1],
  ] as const)('a manifest the store refuses does not hold up an update (%s) or its rollback: tried again before the end, the journal has the backup', async (behaviour, result, calls, running) => {
    await deployV1();
    docker.addImage(V2, behaviour === 'crash' ? 'crash' : undefined);
    const b = new FakeTxBackup(true);
    b.failCommit = backupFailure('store unreachable');
    txBackup = b;
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record.result).toBe(result);
    expect(b.calls).toEqual(calls);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: running }]);
  });

  it('a failing backup before the change aborts the update: nothing stopped, not held', async () => {
    await deployV1();
    docker.addImage(V2);
    const b = new FakeTxBackup(false);
    b.failBegin = backupFailure('store unreachable');
    txBackup = b;
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'failed', code: 'BACKUP_FAILED', failedPhase: 'backup' });
    expect(out.record.reason).toContain('backup failed, update aborted, nothing changed');
    expect(out.held).toBe(false);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: V1 }]);
  });

  it('a failing file backup (disk full) starts the old container again: failed, nothing changed, not held', async () => {
    await deployV1();
    docker.addImage(V2);
    const b = new FakeTxBackup(false);
    b.failComplete = backupFailure('ENOSPC (disk full)');
    txBackup = b;
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'failed', code: 'BACKUP_FAILED', failedPhase: 'backup-files' });
    expect(out.held).toBe(false);
    expect(docker.snapshot()).toEqual([{ name: 's-web-1', status: 'running', image: V1 }]);
    expect((await docker.inspectContainer('s-web-1'))?.restartPolicy).toBe('always');
  });

  it('restoreOnRollback: files restored before the old version starts, the database after', async () => {
    await deployV1();
    docker.addImage(V2, 'crash');
    const b = new FakeTxBackup(true);
    txBackup = b;
    docker.calls.length = 0;
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record.result).toBe('rolled-back');
    expect(out.record.reason).toContain('data restored from backup b1');
    expect(b.calls).toEqual(['begin', 'complete', 'commit', 'restoreFiles', 'restoreDatabase']);
  });

  it('without restoreOnRollback the data is left as the new version left it', async () => {
    await deployV1();
    docker.addImage(V2, 'crash');
    const b = new FakeTxBackup(false);
    txBackup = b;
    expect((await runTransaction(deps(), await updateRequest(), record)).record.result).toBe('rolled-back');
    expect(b.calls).toEqual(['begin', 'complete', 'commit']);
  });

  it('data that cannot be restored: the old version still starts, and the result is rollback-failed', async () => {
    await deployV1();
    docker.addImage(V2, 'crash');
    const b = new FakeTxBackup(true);
    b.failRestoreFiles = backupFailure('checksum mismatch');
    txBackup = b;
    const out = await runTransaction(deps(), await updateRequest(), record);
    expect(out.record.result).toBe('rollback-failed');
    expect(out.record.reason).toContain('the data could not be restored from backup b1');
    expect(docker.running().map((c) => c.spec.image)).toEqual([V1]);
  });
});
