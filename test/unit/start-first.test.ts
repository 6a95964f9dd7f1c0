/**
 * Start-first updates on the in-memory engine: the new container runs beside the old one
 * without the service's aliases until its gate passes; a failed one is removed and the old one
 * never stopped; a crash at any step ends, once resumed, with one version under the aliases.
 * At every step something healthy answers to the service's name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/core/errors.js';
import { asImageRef } from '../../agent/core/ids.js';
import { LABELS } from '../../agent/core/labels.js';
import { hashSpec } from '../../agent/desired/load.js';
import type { AgentOptions, ContainerSpec } from '../../agent/model/desired.js';
import { resumeTransaction, runTransaction, type TransactionOutcome, type TransactionRequest } from '../../agent/apply/transaction.js';
import type { TxDeps } from '../../agent/apply/types.js';
import { ROLLBACK_PHASES, type TxPhase } from '../../agent/model/journal.js';
import type { StepTarget } from '../../agent/model/plan.js';
import { JournalStore } from '../../agent/state/journal-store.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker } from './fakes/fake-docker.js';
import { fakeTxDeps } from './fakes/tx-deps.js';

const V1 = `reg:5000/app:1.0.0@sha256:${'1'.repeat(64)}`;
const V2 = `reg:5000/app:1.1.0@sha256:${'2'.repeat(64)}`;
const NET = 's_default';
const DRAIN_MS = 3000;
const stopFirst: AgentOptions = { policy: 'auto', health: { timeoutMs: 5000, stabilizationMs: 1000, probes: [] } };
const startFirst: AgentOptions = { ...stopFirst, startFirst: { drainMs: DRAIN_MS } };
const spec = (image: string): ContainerSpec => ({ image: asImageRef(image), environment: {}, ports: [], volumes: [], networkMode: NET, networks: [{ network: NET, aliases: ['app', 'api'] }], restart: 'always', labels: {} });

class Crash extends Error {}

let dir: string;
let docker: FakeDocker;
let journals: JournalStore;
const clock = fakeClock();

const deps = (onPoint?: (name: string) => void): TxDeps => fakeTxDeps(docker, journals, clock, onPoint);

const target = (s: ContainerSpec, agent: AgentOptions, revision: string): StepTarget => ({ hash: hashSpec(s), image: s.image, spec: s, agent, dependsOn: [], revision, externalVolumes: [], networks: [{ name: NET, driver: 'bridge', external: false, internal: false, attachable: false, enableIpv6: false, labels: {}, driverOpts: {} }] });
const record = async (_o: TransactionOutcome) => {};

async function deployV1(): Promise<string> {
  docker.addImage(V1, 'healthy', true);
  const out = await runTransaction(deps(), { stack: 's', service: 'app', kind: 'create', revision: 'r1', target: target(spec(V1), startFirst, 'r1') }, record);
  expect(out.record.result).toBe('succeeded');
  return (await docker.inspectContainer('s-app-1'))!.id;
}

async function updateRequest(agent = startFirst): Promise<TransactionRequest> {
  const old = (await docker.inspectContainer('s-app-1'))!;
  return { stack: 's', service: 'app', kind: 'update', revision: 'r2', old: { containerId: old.id, name: old.name, image: old.image, hash: old.labels[LABELS.specHash] ?? '', restartPolicy: old.restartPolicy, agent }, target: target(spec(V2), agent, 'r2') };
}

/** The running containers the service's name reaches, by image. */
const serving = (alias = 'app') => docker.resolve(NET, alias).map((id) => docker.containers.get(id)!.spec.image);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'start-first-'));
  docker = new FakeDocker();
  journals = new JournalStore(join(dir, 'journal'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('start-first update', () => {
  it('starts the new container beside the old one, switches the aliases after the gate, drains, then stops the old one', async () => {
    const oldId = await deployV1();
    docker.addImage(V2);
    const seen: Partial<Record<string, string[]>> = {};
    const start = clock.now();
    let drainStarted = 0;
    const out = await runTransaction(deps((p) => {
      seen[p] = serving();
      if (p === 'before:drain') drainStarted = clock.now();
    }), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'succeeded', from: V1, to: V2 });
    // No downtime to report: the old one served until the new one did.
    expect(out.record.downtimeMs).toBeUndefined();
    expect(out.journal.trail.map((t) => t.phase)).toEqual(['pull', 'backup', 'backup-files', 'rename-old', 'create-new', 'start-new', 'health-gate', 'switch', 'drain', 'retire-old', 'remove-old', 'finish']);
    // Before the switch only the old one answers; during the drain both; after it only the new one.
    expect(seen['after:health-gate']).toEqual([V1]);
    expect(seen['after:switch']?.sort()).toEqual([V1, V2]);
    expect(seen['after:drain']?.sort()).toEqual([V1, V2]);
    expect(seen['after:retire-old']).toEqual([V2]);
    expect(serving('api')).toEqual([V2]);
    expect(clock.now() - drainStarted).toBeGreaterThanOrEqual(DRAIN_MS);
    expect(clock.now() - start).toBeGreaterThanOrEqual(DRAIN_MS + startFirst.health.stabilizationMs);
    // The old container was never stopped before the new one had passed its gate.
    const stopOld = docker.calls.indexOf(`stopContainer ${oldId}`);
    const aliases = docker.calls.findIndex((c) => c.startsWith('setNetworkAliases'));
    expect(aliases).toBeGreaterThan(-1);
    expect(stopOld).toBeGreaterThan(aliases);
    expect(docker.snapshot()).toEqual([{ name: 's-app-1', status: 'running', image: V2 }]);
  });

  it('a new version that fails its gate is removed; the old one never stopped and keeps its aliases', async () => {
    const oldId = await deployV1();
    docker.addImage(V2, 'unhealthy');
    const seen: string[][] = [];
    const out = await runTransaction(deps(() => seen.push(serving())), await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'rolled-back', failedPhase: 'health-gate' });
    expect(out.held).toBe(true);
    expect(docker.calls).not.toContain(`stopContainer ${oldId}`);
    expect(docker.calls.some((c) => c.startsWith(`setRestartPolicy ${oldId}`))).toBe(false);
    // Every step of the way, the old version (and only it) answered.
    expect(seen.every((s) => s.length === 1 && s[0] === V1)).toBe(true);
    expect(docker.snapshot()).toEqual([{ name: 's-app-1', status: 'running', image: V1 }]);
    expect(out.record.downtimeMs).toBeUndefined();
  });

  it("the check of the old version after a rollback lasts rollback_config.monitor", async () => {
    await deployV1();
    docker.addImage(V2, 'unhealthy');
    const req = await updateRequest({ ...startFirst, rollbackMonitorMs: 7000 });
    const out = await runTransaction(deps(), req, record);
    expect(out.record.result).toBe('rolled-back');
    const at = (p: string) => Date.parse(out.journal.trail.find((t) => t.phase === p)!.at);
    expect(at('finish') - at('rollback-check-old')).toBeGreaterThanOrEqual(7000);
  });

  it('a stop-first update of the same service stops the old one first and measures its downtime', async () => {
    await deployV1();
    docker.addImage(V2);
    const out = await runTransaction(deps(), await updateRequest(stopFirst), record);
    expect(out.journal.trail.map((t) => t.phase)).toContain('stop-old');
    expect(out.journal.trail.map((t) => t.phase)).not.toContain('switch');
    expect(out.record.downtimeMs).toBeGreaterThan(0);
  });

  it('a terminal engine error while the old one is retired keeps the journal: the new version is never rolled back', async () => {
    await deployV1();
    docker.addImage(V2);
    docker.failNext('stopContainer', new AgentError('DOCKER_ERROR', 'stop refused'));
    await expect(runTransaction(deps(), await updateRequest(), record)).rejects.toMatchObject({ code: 'DOCKER_ERROR' });
    const [j] = await journals.list();
    expect(j?.phase).toBe('retire-old');
    expect(serving()).toContain(V2);
    const out = await resumeTransaction(deps(), j!, record);
    expect(out.record).toMatchObject({ result: 'succeeded', recovered: true });
    expect(docker.snapshot()).toEqual([{ name: 's-app-1', status: 'running', image: V2 }]);
  });

  it('a drain cut short by shutdown resumes for what is left of it', async () => {
    await deployV1();
    docker.addImage(V2);
    const ac = new AbortController();
    const windows: number[] = [];
    const gate: TxDeps['gate'] = async (_id, opts) => {
      windows.push(opts.stabilizationMs);
      // the second gate is the drain's: a second in, the agent is told to stop
      if (windows.length === 2) {
        clock.advance(1000);
        ac.abort();
      }
      return { ok: true, durationMs: 0 };
    };
    await expect(runTransaction({ ...deps(), gate }, await updateRequest(), record, ac.signal)).rejects.toMatchObject({ code: 'ABORTED' });
    const [j] = await journals.list();
    expect(j?.phase).toBe('drain');
    expect(windows).toEqual([startFirst.health.stabilizationMs, DRAIN_MS]);
    const out = await resumeTransaction({ ...deps(), gate }, j!, record);
    expect(out.record.result).toBe('succeeded');
    expect(windows[2]).toBe(DRAIN_MS - 1000);
  });

  it('a new container that fails while both answer is removed; the old one, never stopped, keeps serving', async () => {
    const oldId = await deployV1();
    docker.addImage(V2);
    let gates = 0;
    const gate: TxDeps['gate'] = async () => (++gates === 2 ? { ok: false, failure: { kind: 'exited', exitCode: 1 }, reason: 'exited with code 1', afterHealthy: true } : { ok: true, durationMs: 0 }) as never;
    const seen: string[][] = [];
    const out = await runTransaction({ ...deps(() => seen.push(serving())), gate }, await updateRequest(), record);
    expect(out.record).toMatchObject({ result: 'rolled-back', failedPhase: 'drain' });
    expect(docker.calls).not.toContain(`stopContainer ${oldId}`);
    expect(seen.every((x) => x.includes(V1))).toBe(true);
    expect(serving()).toEqual([V1]);
    expect(docker.snapshot()).toEqual([{ name: 's-app-1', status: 'running', image: V1 }]);
  });
});

const PHASES: TxPhase[] = ['pull', 'backup', 'backup-files', 'rename-old', 'create-new', 'start-new', 'health-gate', 'switch', 'drain', 'retire-old', 'remove-old'];

describe('start-first: a crash at any step, then resume', () => {
  it.each(PHASES.flatMap((p) => [`before:${p}`, `after:${p}`]))('good update, killed at %s: the new version, alone, under the aliases', async (point) => {
    await deployV1();
    docker.addImage(V2);
    let answeredThroughout = true;
    const d = deps((p) => {
      if (serving().length === 0) answeredThroughout = false;
      if (p === point) throw new Crash(p);
    });
    await expect(runTransaction(d, await updateRequest(), record)).rejects.toBeInstanceOf(Crash);
    expect(answeredThroughout).toBe(true);
    expect(serving().length).toBeGreaterThan(0);
    const [j] = await journals.list();
    const out = await resumeTransaction(deps(), j!, record);
    const preChange = /:(pull|backup)$/.test(point);
    expect(out.record.result).toBe(preChange ? 'interrupted' : 'succeeded');
    expect(serving()).toEqual([preChange ? V1 : V2]);
    expect(docker.snapshot()).toEqual([{ name: 's-app-1', status: 'running', image: preChange ? V1 : V2 }]);
    expect(await journals.list()).toEqual([]);
  });

  it.each([...PHASES.slice(0, 7), ...ROLLBACK_PHASES.filter((p) => p !== 'rollback-restore-files' && p !== 'rollback-restore-db')].flatMap((p) => [`before:${p}`, `after:${p}`]))('failing update, killed at %s: the old version, alone, never stopped', async (point) => {
    const oldId = await deployV1();
    docker.addImage(V2, 'unhealthy');
    let answeredThroughout = true;
    const d = deps((p) => {
      if (serving().length !== 1 || serving()[0] !== V1) answeredThroughout = false;
      if (p === point) throw new Crash(p);
    });
    await expect(runTransaction(d, await updateRequest(), record)).rejects.toBeInstanceOf(Crash);
    const [j] = await journals.list();
    const out = await resumeTransaction(deps(), j!, record);
    expect(answeredThroughout).toBe(true);
    expect(['rolled-back', 'interrupted']).toContain(out.record.result);
    expect(docker.calls).not.toContain(`stopContainer ${oldId}`);
    expect(serving()).toEqual([V1]);
    expect(docker.snapshot()).toEqual([{ name: 's-app-1', status: 'running', image: V1 }]);
  });
});
