import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentError } from '../../agent/core/errors.js';
import { noFailpoints } from '../../agent/core/failpoints.js';
import { runHealthGate } from '../../agent/health/gate.js';
import type { ConditionReason } from '../../agent/model/agent-state.js';
import type { ReconcileReport, ReconcileResult } from '../../agent/model/report.js';
import { noBackup } from '../../agent/ports/tx-backup.js';
import { createLoop } from '../../agent/reconcile/loop.js';
import { reconcileOnce, type ReconcileDeps } from '../../agent/reconcile/reconcile.js';
import { addQuarantineRule } from '../../agent/renovate/quarantine.js';
import { createGitSource } from '../../agent/source/git/git-source.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker } from './fakes/fake-docker.js';
import { FakeGit } from './fakes/fake-git.js';
import { MemoryState } from './fakes/memory-state.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGES = { '1.0.0': `reg:5000/web:1.0.0@${D('a')}`, '1.1.0': `reg:5000/web:1.1.0@${D('b')}`, '1.2.0': `reg:5000/web:1.2.0@${D('c')}` } as const;
type Version = keyof typeof IMAGES;
const STACK = (v: Version, extra = '') => `name: demo\nservices:\n  web:\n    image: ${IMAGES[v]}\n    network_mode: host\n    restart: always\n${extra}    x-agent:\n      policy: auto\n      health: {timeout: 5s, stabilization: 1s}\n`;
const RENOVATE = '{\n  "packageRules": []\n}\n';
const silent = pino({ level: 'silent' });

/** A host with its engine, its state directory and its desired-state repository, all in memory. */
function host(o: { revert?: boolean; secrets?: string[] } = {}) {
  const clock = fakeClock();
  const git = new FakeGit({ 'desired-state/stack.yaml': STACK('1.0.0'), 'renovate.json': RENOVATE });
  const docker = new FakeDocker();
  docker.addImage(IMAGES['1.0.0'], 'healthy');
  docker.addImage(IMAGES['1.1.0'], 'crash');
  docker.addImage(IMAGES['1.2.0'], 'healthy');
  const state = new MemoryState();
  let tx = 0;
  const deps: ReconcileDeps = {
    clock,
    source: createGitSource({ repo: git, path: 'desired-state', renovateConfigPath: 'renovate.json', clock }),
    docker,
    env: async () => ({}),
    defaultStack: 'demo',
    policy: undefined,
    roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' },
    log: silent,
    state,
    concurrency: 2,
    txBackup: () => noBackup,
    failpoint: noFailpoints,
    gate: (id, opts, signal) => runHealthGate({ docker, clock, pollMs: 100 }, id, opts, signal),
    newTxId: () => `20261201T100000Z-${String(++tx).padStart(6, '0')}`,
    secrets: async () => o.secrets ?? [],
    ...(o.revert === false ? {} : { revert: { repo: git, path: 'desired-state', renovateConfigPath: 'renovate.json', identity: { name: 'gitops-agent', email: 'agent@host-1' }, maxAttempts: 3, host: 'host-1' } }),
  };
  const pass = () => reconcileOnce(deps);
  const condition = (type: string) => state.state.conditions.find((c) => c.type === type);
  const push = (v: Version, extra = '') => git.serverCommit({ 'desired-state/stack.yaml': STACK(v, extra) }, `Update web to ${v}`);
  return { clock, git, docker, state, deps, pass, condition, push };
}

type Host = ReturnType<typeof host>;

interface Row {
  name: string;
  arrange: (h: Host) => void | Promise<void>;
  result: ReconcileResult;
  /** [result, error code] of each transaction. */
  tx: [string, string | undefined][];
  ready: ConditionReason;
  degraded: ConditionReason;
  check?: (h: Host, r: ReconcileReport) => void | Promise<void>;
}

const ROWS: Row[] = [
  { name: 'nothing changed: a no-op, one state write', arrange: () => undefined, result: 'no-op', tx: [], ready: 'Succeeded', degraded: 'Succeeded', check: (h) => expect(h.state.saves).toBe(1) },
  { name: 'an update that passes its gate', arrange: (h) => void h.push('1.2.0'), result: 'succeeded', tx: [['succeeded', undefined]], ready: 'Succeeded', degraded: 'Succeeded', check: (h) => expect(h.state.applied.web?.spec.image).toBe(IMAGES['1.2.0']) },
  {
    name: 'an update that crashes: rolled back, held, written back to Git',
    arrange: (h) => void h.push('1.1.0'),
    result: 'failed',
    tx: [['rolled-back', 'HEALTH_CHECK_FAILED']],
    // Until the next pass reads the revert commit back, the version is held: not ready.
    ready: 'UpdateFailed',
    degraded: 'UpdateFailed',
    check: (h, r) => {
      expect(r.transactions[0]?.gate).toMatchObject({ kind: 'exited', exitCode: 3 });
      expect(h.state.state.services.web?.held).toMatchObject({ kind: 'failed', image: IMAGES['1.1.0'] });
      expect(r.reverts).toEqual([expect.objectContaining({ status: 'pushed', quarantined: '1.1.0' })]);
      expect(r.revertsPushed).toBe(1);
      expect(h.docker.running().map((c) => c.spec.image)).toEqual([IMAGES['1.0.0']]);
    },
  },
  {
    name: 'the registry is down during the pull: failed, not held, retried',
    arrange: (h) => {
      h.push('1.2.0');
      h.docker.failNext('pullImage', new AgentError('PULL_FAILED', 'registry unreachable'));
    },
    result: 'failed',
    tx: [['failed', 'PULL_FAILED']],
    ready: 'Progressing',
    degraded: 'Succeeded',
    check: async (h) => {
      expect(h.state.state.services.web?.held).toBeUndefined();
      // Retried by the next pass, once the registry answers.
      expect((await h.pass()).transactions.map((t) => [t.result, t.to])).toEqual([['succeeded', IMAGES['1.2.0']]]);
    },
  },
  {
    name: 'the engine is down: blocked, transient, nothing touched',
    arrange: (h) => h.docker.failNext('ping', new AgentError('DOCKER_UNAVAILABLE', 'connect ENOENT /run/docker.sock')),
    result: 'error',
    tx: [],
    ready: 'DockerUnavailable',
    degraded: 'Succeeded',
    check: (h, r) => {
      expect(r.blocked).toMatchObject({ reason: 'DockerUnavailable', errorClass: 'transient', code: 'DOCKER_UNAVAILABLE' });
      expect(h.docker.calls.filter((c) => /^(create|start|stop|remove|rename)/.test(c))).toEqual([]);
    },
  },
  {
    name: 'an invalid desired state: refused, nothing applied',
    arrange: (h) => void h.git.serverCommit({ 'desired-state/stack.yaml': 'services:\n  web:\n    image: [\n' }, 'Broken edit'),
    result: 'invalid',
    tx: [],
    ready: 'ValidationFailed',
    degraded: 'Succeeded',
    check: (h) => {
      expect(h.condition('Stalled')).toMatchObject({ status: 'True', reason: 'ValidationFailed' });
      expect(h.docker.calls.filter((c) => /^(create|start|stop|remove|rename)/.test(c))).toEqual([]);
    },
  },
  {
    name: "a container under an earlier agent's name (<stack>-<service>): renamed in place as Compose names it, not recreated",
    arrange: async (h) => {
      const c = (await h.docker.inspectContainer('demo-web-1'))!;
      await h.docker.renameContainer(c.id, 'demo-web');
      h.docker.calls.length = 0;
    },
    result: 'no-op',
    tx: [],
    ready: 'Succeeded',
    degraded: 'Succeeded',
    check: async (h) => {
      expect(h.docker.calls.filter((c) => /^(create|start|stop|remove|rename)/.test(c)).map((c) => c.split(' ')[0])).toEqual(['renameContainer']);
      expect((await h.docker.inspectContainer('demo-web-1'))?.status).toBe('running');
    },
  },
  {
    name: 'a container stopped by hand: repaired',
    arrange: async (h) => h.docker.stopContainer((await h.docker.inspectContainer('demo-web-1'))!.id),
    result: 'succeeded',
    tx: [['succeeded', undefined]],
    ready: 'Succeeded',
    degraded: 'Succeeded',
  },
  {
    name: 'the service is busy with a backup: left for the next pass',
    arrange: (h) => {
      h.push('1.2.0');
      h.state.busy.add('web');
    },
    result: 'succeeded',
    tx: [],
    ready: 'DependencyNotReady',
    degraded: 'Succeeded',
    check: (h, r) => expect(r.waiting?.web).toMatchObject({ reason: 'busy' }),
  },
  {
    name: 'a quarantined version: not applied',
    arrange: (h) => void h.git.serverCommit({ 'desired-state/stack.yaml': STACK('1.2.0'), 'renovate.json': addQuarantineRule(RENOVATE, IMAGES['1.2.0'], '1.2.0', 'failed on host-2') }, 'Update web to 1.2.0'),
    result: 'no-op',
    tx: [],
    ready: 'Quarantined',
    degraded: 'Succeeded',
    check: (_h, r) => expect(r.pending?.steps[0]).toMatchObject({ cause: 'quarantined', held: { kind: 'quarantined' } }),
  },
];

describe('reconcileOnce: outcomes and conditions', () => {
  it.each(ROWS)('$name', async (row) => {
    const h = host();
    expect((await h.pass()).result).toBe('succeeded');
    h.state.saves = 0;
    h.docker.calls.length = 0;
    await row.arrange(h);
    const r = await h.pass();
    expect(r.result).toBe(row.result);
    expect(r.transactions.map((t) => [t.result, t.code])).toEqual(row.tx);
    expect(h.condition('Ready')).toMatchObject({ reason: row.ready, status: row.ready === 'Succeeded' ? 'True' : 'False' });
    expect(h.condition('Degraded')).toMatchObject({ reason: row.degraded, status: row.degraded === 'Succeeded' ? 'False' : 'True' });
    await row.check?.(h, r);
  });
});

describe('a held version', () => {
  it('stays held when its last good container is repaired (it is never deployed again)', async () => {
    const h = host({ revert: false });
    await h.pass();
    h.push('1.1.0');
    expect((await h.pass()).transactions.map((t) => t.result)).toEqual(['rolled-back']);
    await h.docker.stopContainer((await h.docker.inspectContainer('demo-web-1'))!.id);
    const repair = await h.pass();
    expect(repair.transactions.map((t) => [t.result, t.to])).toEqual([['succeeded', IMAGES['1.0.0']]]);
    expect(h.state.state.services.web?.held).toMatchObject({ image: IMAGES['1.1.0'] });
    const next = await h.pass();
    expect(next.transactions).toEqual([]);
    expect(next.pending?.steps[0]).toMatchObject({ cause: 'held', action: 'none' });
    expect(h.state.history.filter((t) => t.to === IMAGES['1.1.0'])).toHaveLength(1);
  });

  it('keeps secrets out of everything it records, the gate failure\'s own output included', async () => {
    const h = host({ revert: false, secrets: ['config invalid'] });
    await h.pass();
    h.push('1.1.0');
    const r = await h.pass();
    expect(r.transactions[0]?.gate).toMatchObject({ kind: 'exited', output: 'fatal: [redacted]' });
    expect(JSON.stringify(h.state.state)).not.toContain('config invalid');
    expect(JSON.stringify(h.state.history)).not.toContain('config invalid');
  });
});

describe('the revert queue', () => {
  it('after the revert commit, the next pass reads it back: Git and the host agree, the failure stays visible', async () => {
    const h = host();
    await h.pass();
    h.push('1.1.0');
    const failed = await h.pass();
    expect(failed.revertsPushed).toBe(1);
    const after = await h.pass();
    expect(after.result).toBe('no-op');
    expect(h.condition('Ready')).toMatchObject({ status: 'True' });
    expect(h.state.state.services.web?.held).toBeUndefined();
    expect(h.state.state.services.web?.lastTransaction).toMatchObject({ result: 'rolled-back' });
    expect(h.state.state.services.web?.revert).toMatchObject({ state: 'pushed' });
    expect(h.state.state.quarantined).toEqual([expect.objectContaining({ service: 'web', version: '1.1.0', blocking: false })]);
    expect(h.git.pushes).toHaveLength(1);
  });

  it('an agent killed right after its push finds its revert on the branch: recorded, never pushed twice', async () => {
    const h = host();
    await h.pass();
    h.push('1.1.0');
    h.git.failNextPush({ kind: 'crash-after-push' });
    const failed = await h.pass();
    expect(failed.revertsPushed ?? 0).toBe(0);
    expect(h.state.state.services.web?.revert).toMatchObject({ state: 'pending' });
    expect(h.git.pushes).toHaveLength(1);
    const next = await h.pass();
    expect(h.state.state.services.web?.revert).toMatchObject({ state: 'pushed', commit: h.git.tip });
    expect(next.result).toBe('no-op');
    expect(h.git.pushes).toHaveLength(1);
  });

  it('a refused push is kept and retried, and says so in Degraded', async () => {
    const h = host();
    await h.pass();
    h.push('1.1.0');
    h.git.failNextPush({ kind: 'auth' });
    const r = await h.pass();
    expect(r.reverts).toEqual([expect.objectContaining({ status: 'refused' })]);
    expect(h.state.state.services.web?.revert).toMatchObject({ state: 'refused', nextAttemptAt: expect.any(String) });
    expect(h.condition('Degraded')).toMatchObject({ status: 'True', reason: 'RevertRefused' });
    h.clock.advance(11 * 60_000);
    const retried = await h.pass();
    expect(retried.reverts).toEqual([expect.objectContaining({ status: 'pushed' })]);
  });
});

describe('the loop', () => {
  afterEach(() => vi.useRealTimers());

  /** Runs the loop on fake timers over `reports` (one per pass), for `ms`; the times of the passes. */
  async function passTimes(o: { intervalMs: number; reports: ReconcileReport[]; ms: number }): Promise<number[]> {
    vi.useFakeTimers();
    const at: number[] = [];
    const controller = new AbortController();
    const loop = createLoop({
      intervalMs: o.intervalMs,
      jitter: 0,
      minBackoffMs: 2000,
      log: silent,
      reconcile: async () => {
        at.push(Date.now());
        if (at.length >= o.reports.length) controller.abort();
        return o.reports[at.length - 1] ?? { result: 'no-op', message: 'ok', transactions: [] };
      },
    });
    const done = loop.run(controller.signal);
    await vi.advanceTimersByTimeAsync(o.ms);
    await done;
    return at.slice(1).map((t, i) => t - (at[i] as number));
  }

  const engineDown: ReconcileReport = { result: 'error', message: 'engine down', transactions: [], blocked: { reason: 'DockerUnavailable', message: 'down', errorClass: 'transient' } };
  const noOp: ReconcileReport = { result: 'no-op', message: 'ok', transactions: [] };

  it('backs off after transient failures (2 s, 4 s, 8 s), and goes back to the interval once a pass succeeds', async () => {
    expect(await passTimes({ intervalMs: 60_000, reports: [engineDown, engineDown, engineDown, noOp, noOp], ms: 2000 + 4000 + 8000 + 60_000 + 10 })).toEqual([2000, 4000, 8000, 60_000]);
  });

  it('a terminal failure (an invalid desired state) waits for the interval, not a back-off', async () => {
    const invalid: ReconcileReport = { result: 'invalid', message: 'invalid', transactions: [] };
    expect(await passTimes({ intervalMs: 30_000, reports: [invalid, invalid, invalid], ms: 60_010 })).toEqual([30_000, 30_000]);
  });

  it('a pass that pushed a revert is followed by another at once', async () => {
    expect(await passTimes({ intervalMs: 30_000, reports: [{ result: 'failed', message: 'rolled back', transactions: [], revertsPushed: 1 }, noOp], ms: 10 })).toEqual([0]);
  });
});

describe('services on the stack network', () => {
  const TWO = (db: Version) => `name: demo\nservices:\n  db:\n    image: ${IMAGES[db]}\n    restart: always\n    x-agent:\n      health: {timeout: 5s, stabilization: 1s}\n  web:\n    image: ${IMAGES['1.0.0']}\n    depends_on: [db]\n    x-agent:\n      health: {timeout: 5s, stabilization: 1s}\n`;

  it('reach each other by service name, before and after an update; the network is created once', async () => {
    const h = host();
    h.git.serverCommit({ 'desired-state/stack.yaml': TWO('1.0.0') }, 'Two services on the project network');
    expect((await h.pass()).transactions.map((t) => [t.service, t.result])).toEqual([['db', 'succeeded'], ['web', 'succeeded']]);
    const before = h.docker.resolve('demo_default', 'db');
    expect(before).toEqual([(await h.docker.inspectContainer('demo-db-1'))?.id]);
    expect(h.docker.resolve('demo_default', 'web')).toHaveLength(1);

    h.git.serverCommit({ 'desired-state/stack.yaml': TWO('1.2.0') }, 'Update db');
    expect((await h.pass()).transactions.map((t) => [t.service, t.result])).toEqual([['db', 'succeeded']]);
    const after = h.docker.resolve('demo_default', 'db');
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect([...h.docker.networks.keys()]).toEqual(['demo_default']);
    expect((await h.pass()).result).toBe('no-op');
  });
});
