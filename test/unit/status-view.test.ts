import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { noFailpoints } from '../../agent/core/failpoints.js';
import { runHealthGate } from '../../agent/health/gate.js';
import { buildStatusView } from '../../agent/cli/status-view.js';
import type { ReadOnlyRuntime } from '../../agent/cli/runtime.js';
import type { AgentConfig } from '../../agent/config/config.js';
import { AgentError } from '../../agent/core/errors.js';
import { noBackup } from '../../agent/ports/tx-backup.js';
import type { BackupRepository } from '../../agent/ports/backup-repository.js';
import { reconcileOnce, type ReconcileDeps } from '../../agent/reconcile/reconcile.js';
import { createGitSource } from '../../agent/source/git/git-source.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker } from './fakes/fake-docker.js';
import { FakeGit } from './fakes/fake-git.js';
import { MemoryState } from './fakes/memory-state.js';

const IMAGE = `reg:5000/web:1.0.0@sha256:${'a'.repeat(64)}`;
const STACK = `name: demo\nservices:\n  web:\n    image: ${IMAGE}\n    network_mode: host\n    restart: always\n    x-agent:\n      health: {timeout: 5s, stabilization: 1s}\n`;
const silent = pino({ level: 'silent' });

/** A host that deployed its stack; then `status` as the command builds it, from the same state. */
async function deployed() {
  const clock = fakeClock();
  const git = new FakeGit({ 'desired-state/stack.yaml': STACK });
  const docker = new FakeDocker();
  docker.addImage(IMAGE, 'healthy');
  const state = new MemoryState();
  const source = createGitSource({ repo: git, path: 'desired-state', renovateConfigPath: 'renovate.json', clock });
  const base = { clock, source, docker, env: async () => ({}), defaultStack: 'demo', policy: undefined, roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' }, log: silent };
  const deps: ReconcileDeps = { ...base, state, concurrency: 1, txBackup: () => noBackup, failpoint: noFailpoints, gate: (id, o, s) => runHealthGate({ docker, clock, pollMs: 100 }, id, o, s), newTxId: () => '20261201T100000Z-000001', secrets: async () => [] };
  expect((await reconcileOnce(deps)).result).toBe('succeeded');
  const backups: BackupRepository = { location: 'memory', list: async () => [] } as unknown as BackupRepository;
  const rt: ReadOnlyRuntime = { config: { stateDir: '/state', host: 'h', stack: 'demo' } as AgentConfig, log: silent, clock, docker, state, backups, source, env: async () => ({}), assessDeps: base, sourceOffline: true };
  const conditions = async () => Object.fromEntries((await buildStatusView(rt, '0.0.0')).conditions.map((c) => [c.type, `${c.status} ${c.reason}`]));
  return { docker, deps, state, conditions };
}

describe('agent status: conditions follow the live state', () => {
  it('a container stopped by hand is Degraded at once, before any pass repairs it', async () => {
    const h = await deployed();
    expect(await h.conditions()).toMatchObject({ Ready: 'True Succeeded', Degraded: 'False Succeeded' });
    await h.docker.stopContainer((await h.docker.inspectContainer('demo-web-1'))!.id);
    expect(await h.conditions()).toMatchObject({ Ready: 'False ServiceNotRunning', Degraded: 'True ServiceNotRunning' });
  });

  it('a container a transaction has stopped is not called Degraded: it is the transaction\'s', async () => {
    const h = await deployed();
    const c = (await h.docker.inspectContainer('demo-web-1'))!;
    await h.state.journals.write({ version: 1, txId: '20261201T100100Z-000002', stack: 'demo', service: 'web', kind: 'update', revision: 'r2', startedAt: '2026-12-01T10:01:00Z', phase: 'create-new', trail: [], old: { containerId: c.id, name: c.name, image: c.image, hash: '', restartPolicy: 'always', stopTimeoutMs: 10_000 } });
    await h.docker.stopContainer(c.id);
    expect(await h.conditions()).toMatchObject({ Degraded: 'False Succeeded' });
  });

  it('a container removed by hand likewise', async () => {
    const h = await deployed();
    await h.docker.removeContainer((await h.docker.inspectContainer('demo-web-1'))!.id);
    expect(await h.conditions()).toMatchObject({ Degraded: 'True ServiceNotRunning' });
  });

  it('an engine that answers again is no longer DockerUnavailable, though the last pass said so', async () => {
    const h = await deployed();
    h.docker.failNext('ping', new AgentError('DOCKER_UNAVAILABLE', 'connect ECONNREFUSED'));
    expect((await reconcileOnce(h.deps)).blocked?.reason).toBe('DockerUnavailable');
    expect(await h.conditions()).toMatchObject({ Ready: 'True Succeeded' });
  });

  it('an engine that is down now is DockerUnavailable', async () => {
    const h = await deployed();
    h.docker.failNext('listContainers', new AgentError('DOCKER_UNAVAILABLE', 'connect ECONNREFUSED'), 2);
    expect(await h.conditions()).toMatchObject({ Ready: 'False DockerUnavailable' });
  });
});
