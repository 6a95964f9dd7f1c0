/**
 * Reloads in place (`x-agent.reload`): which updates are reloads, the transaction on the
 * in-memory engine with real live folders on disk (the files swapped, the command run, the
 * gate; the previous files back on failure), a crash at each step, and the kept container
 * seen with the hash of the spec it now runs.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asImageRef } from '../../agent/core/ids.js';
import { LABELS } from '../../agent/core/labels.js';
import { hashSpec } from '../../agent/desired/load.js';
import { createProjectFiles } from '../../agent/apply/project-files.js';
import { resumeTransaction, runTransaction, type TransactionOutcome } from '../../agent/apply/transaction.js';
import type { TxDeps } from '../../agent/apply/types.js';
import type { AgentOptions, ContainerSpec } from '../../agent/model/desired.js';
import type { ActualState } from '../../agent/model/actual.js';
import type { PlanStep, StepTarget } from '../../agent/model/plan.js';
import type { AppliedRecord } from '../../agent/model/records.js';
import { recogniseReloads, reloadOf } from '../../agent/reconcile/reload-plan.js';
import { JournalStore } from '../../agent/state/journal-store.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker } from './fakes/fake-docker.js';
import { fakeTxDeps } from './fakes/tx-deps.js';

const IMAGE = `reg:5000/nginx:1.22.1@sha256:${'1'.repeat(64)}`;
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const agent: AgentOptions = { policy: 'auto', health: { timeoutMs: 5000, stabilizationMs: 1000, probes: [] }, reload: { command: ['nginx', '-s', 'reload'], timeoutMs: 5000 } };

let dir: string;
let files: string;
let docker: FakeDocker;
let journals: JournalStore;
const clock = fakeClock();
const record = async (_o: TransactionOutcome) => {};

const spec = (digest: string, image = IMAGE): ContainerSpec => ({
  image: asImageRef(image),
  environment: {},
  ports: [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  volumes: [{ type: 'bind', source: join(files, digest), target: '/etc/nginx/conf.d', readOnly: true, project: { path: 'nginx', kind: 'dir', digest } }],
  networkMode: 'host',
  restart: 'always',
  labels: {},
});
const target = (s: ContainerSpec, revision: string): StepTarget => ({ hash: hashSpec(s), image: s.image, spec: s, agent, dependsOn: [], revision, externalVolumes: [] });

function deps(onPoint?: (name: string) => void): TxDeps {
  const projectFiles = createProjectFiles({ files, data: join(dir, 'data') }, async () => {
    throw new Error('every copy is made by the test');
  });
  return fakeTxDeps(docker, journals, clock, onPoint, { files: projectFiles });
}

function copy(digest: string, content: string): void {
  mkdirSync(join(files, digest), { recursive: true });
  writeFileSync(join(files, digest, 'site.conf'), content);
}

/** The live folder the container binds, and what it holds. */
function bound(id: string): { path: string; content: string } {
  const c = docker.containers.get(id)!;
  const path = c.spec.volumes[0]!.source;
  return { path, content: readFileSync(join(path, 'site.conf'), 'utf8') };
}

async function deploy(): Promise<string> {
  docker.addImage(IMAGE, 'healthy', true);
  const out = await runTransaction(deps(), { stack: 's', service: 'nginx', kind: 'create', revision: 'r1', target: target(spec(A), 'r1') }, record);
  expect(out.record.result).toBe('succeeded');
  return (await docker.inspectContainer('s-nginx-1'))!.id;
}

async function reloadRequest(id: string, to: string) {
  const c = (await docker.inspectContainer(id))!;
  return { stack: 's', service: 'nginx', kind: 'update' as const, revision: 'r2', old: { containerId: c.id, name: c.name, image: c.image, hash: c.labels[LABELS.specHash]!, restartPolicy: c.restartPolicy, agent }, target: target(spec(to), 'r2'), reload: [{ target: '/etc/nginx/conf.d', path: bound(id).path, from: A, to }] };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'reload-'));
  files = join(dir, 'files');
  copy(A, 'server { listen 80; }\n');
  copy(B, 'server { listen 80; add_header X-Site b; }\n');
  copy(C, 'server { lissten 80; }\n');
  docker = new FakeDocker();
  journals = new JournalStore(join(dir, 'journal'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('a reload in place', () => {
  it('creates the container on a live folder of its own, not on the copy', async () => {
    const id = await deploy();
    const b = bound(id);
    expect(b.path).toMatch(new RegExp(`^${files}/live/tx\\d+/[0-9a-f]{16}$`));
    expect(b.content).toBe('server { listen 80; }\n');
  });

  it('swaps the files, runs the command in the same container, passes the gate', async () => {
    const id = await deploy();
    const out = await runTransaction(deps(), await reloadRequest(id, B), record);
    expect(out.record).toMatchObject({ result: 'succeeded', reloaded: true });
    expect(out.journal.trail.map((t) => t.phase)).toEqual(['pull', 'swap-files', 'reload', 'health-gate', 'finish']);
    expect(docker.snapshot()).toEqual([{ name: 's-nginx-1', status: 'running', image: IMAGE }]);
    expect(docker.containers.has(id)).toBe(true);
    expect(bound(id).content).toContain('X-Site b');
    expect(docker.calls.filter((c) => c.startsWith('exec'))).toContain(`exec ${id} nginx -s reload`);
    expect(docker.calls.some((c) => /^(stopContainer|createContainer|removeContainer)/.test(c) && !c.includes('s-nginx-1'))).toBe(false);
    // no temporary file is left in the folder nginx includes
    expect(readdirSync(bound(id).path)).toEqual(['site.conf']);
  });

  it('a command that refuses the new files: the previous files back, the command again, held', async () => {
    const id = await deploy();
    let reloads = 0;
    docker.execResult = (_id, argv) => {
      if (argv[0] !== 'nginx') return { exitCode: 0, output: '' };
      reloads++;
      return readFileSync(join(bound(id).path, 'site.conf'), 'utf8').includes('lissten') ? { exitCode: 1, output: 'nginx: [emerg] unknown directive "lissten"' } : { exitCode: 0, output: '' };
    };
    const out = await runTransaction(deps(), await reloadRequest(id, C), record);
    expect(out.record).toMatchObject({ result: 'rolled-back', code: 'RELOAD_FAILED', failedPhase: 'reload' });
    expect(out.record.reason).toContain('unknown directive');
    expect(out.held).toBe(true);
    expect(out.journal.trail.map((t) => t.phase)).toEqual(['pull', 'swap-files', 'reload', 'rollback-swap-files', 'rollback-reload', 'rollback-check-old', 'finish']);
    expect(reloads).toBe(2);
    expect(bound(id).content).toBe('server { listen 80; }\n');
    expect(docker.containers.has(id)).toBe(true);
  });

  it('a gate that fails after the reload: the previous files back', async () => {
    const id = await deploy();
    const d = deps();
    let gates = 0;
    d.gate = async () => (++gates === 1 ? { ok: false, failure: { kind: 'probe', probe: 'http', detail: 'status 502' }, reason: 'the probe got 502' } : { ok: true, durationMs: 0 }) as never;
    const out = await runTransaction(d, await reloadRequest(id, B), record);
    expect(out.record).toMatchObject({ result: 'rolled-back', failedPhase: 'health-gate' });
    expect(bound(id).content).toBe('server { listen 80; }\n');
  });

  it.each(['swap-files', 'reload', 'health-gate'].flatMap((p) => [`before:${p}`, `after:${p}`]))('killed at %s, then resumed: the new files, reloaded, the same container', async (point) => {
    const id = await deploy();
    await expect(runTransaction(deps((p) => {
      if (p === point) throw new Error(`crash at ${p}`);
    }), await reloadRequest(id, B), record)).rejects.toThrow('crash');
    const [j] = await journals.list();
    const out = await resumeTransaction(deps(), j!, record);
    expect(out.record.result).toBe('succeeded');
    expect(bound(id).content).toContain('X-Site b');
    expect(docker.snapshot()).toEqual([{ name: 's-nginx-1', status: 'running', image: IMAGE }]);
  });

  it.each(['rollback-swap-files', 'rollback-reload', 'rollback-check-old'].flatMap((p) => [`before:${p}`, `after:${p}`]))('a refused reload killed at %s, then resumed: the previous files', async (point) => {
    const id = await deploy();
    docker.execResult = (_id, argv) => (argv[0] === 'nginx' && readFileSync(join(bound(id).path, 'site.conf'), 'utf8').includes('lissten') ? { exitCode: 1, output: 'emerg' } : { exitCode: 0, output: '' });
    await expect(runTransaction(deps((p) => {
      if (p === point) throw new Error(`crash at ${p}`);
    }), await reloadRequest(id, C), record)).rejects.toThrow('crash');
    const [j] = await journals.list();
    const out = await resumeTransaction(deps(), j!, record);
    expect(out.record.result).toBe('rolled-back');
    expect(bound(id).content).toBe('server { listen 80; }\n');
  });

  it('a container that stopped after the reload is started again on the previous files, with the previous command', async () => {
    const id = await deploy();
    const req = await reloadRequest(id, C);
    req.old.agent = { ...agent, reload: { command: ['nginx', '-s', 'reload', '-c', '/etc/nginx/old.conf'], timeoutMs: 5000 } };
    docker.execResult = (cid, argv) => {
      if (argv[0] !== 'nginx') return { exitCode: 0, output: '' };
      // the reload that takes the broken files brings nginx down
      if (readFileSync(join(bound(id).path, 'site.conf'), 'utf8').includes('lissten')) {
        void docker.stopContainer(cid);
        return { exitCode: 0, output: '' };
      }
      return { exitCode: 0, output: '' };
    };
    const out = await runTransaction(deps(), req, record);
    expect(out.record).toMatchObject({ result: 'rolled-back', failedPhase: 'health-gate' });
    expect(bound(id).content).toBe('server { listen 80; }\n');
    expect(docker.running().map((c) => c.id)).toEqual([id]);
    expect(docker.calls.filter((c) => c.startsWith(`startContainer ${id}`)).length).toBeGreaterThanOrEqual(2);
  });

  it('the previous command undoes a reload whose container still runs', async () => {
    const id = await deploy();
    const req = await reloadRequest(id, C);
    req.old.agent = { ...agent, reload: { command: ['nginx', '-s', 'reload', '-c', '/etc/nginx/old.conf'], timeoutMs: 5000 } };
    docker.execResult = (_id, argv) => (argv[0] === 'nginx' && argv.length === 3 ? { exitCode: 1, output: 'emerg' } : { exitCode: 0, output: '' });
    const out = await runTransaction(deps(), req, record);
    expect(out.record.result).toBe('rolled-back');
    expect(docker.calls).toContain(`exec ${id} nginx -s reload -c /etc/nginx/old.conf`);
  });

  it('a shutdown during the command keeps the journal: the step runs again, nothing is held', async () => {
    const id = await deploy();
    const ac = new AbortController();
    docker.execResult = (_id, argv) => {
      if (argv[0] === 'nginx') ac.abort();
      return { exitCode: -1, output: '' };
    };
    await expect(runTransaction(deps(), await reloadRequest(id, B), record, ac.signal)).rejects.toMatchObject({ code: 'ABORTED' });
    const [j] = await journals.list();
    expect(j?.phase).toBe('reload');
    docker.execResult = () => ({ exitCode: 0, output: '' });
    const out = await resumeTransaction(deps(), j!, record);
    expect(out.record).toMatchObject({ result: 'succeeded', recovered: true });
  });

  it('a live folder gone under a reload is skipped by its rollback, not retried forever', async () => {
    const id = await deploy();
    const req = await reloadRequest(id, B);
    rmSync(req.reload[0]!.path, { recursive: true, force: true });
    const out = await runTransaction(deps(), req, record);
    expect(out.record).toMatchObject({ result: 'rolled-back', failedPhase: 'swap-files' });
    expect(await journals.list()).toEqual([]);
  });

  it('refuses to write outside the live folders', async () => {
    const d = deps();
    await expect(d.files!.syncLive(join(files, A), B)).rejects.toThrow(/not a live folder/);
    await expect(d.files!.syncLive('/etc', B)).rejects.toThrow(/not a live folder/);
  });

  it('does not read the engine when there is no live folder', async () => {
    expect(await deps().files!.pruneLive(async () => {
      throw new Error('the engine was asked');
    })).toEqual([]);
  });

  it('removes the live folders of containers that are gone', async () => {
    const id = await deploy();
    const key = docker.containers.get(id)!.labels[LABELS.txId]!;
    mkdirSync(join(files, 'live', 'tx-old', 'x'), { recursive: true });
    expect(await deps().files!.pruneLive(async () => new Set([key]))).toEqual(['tx-old']);
    expect(readdirSync(join(files, 'live'))).toEqual([key]);
  });
});

describe('which updates are reloads', () => {
  const applied = (s: ContainerSpec): AppliedRecord => ({ hash: hashSpec(s), spec: s, agent, dependsOn: [], revision: 'r1', at: '2026-12-01T00:00:00Z' });
  const actualWith = (source: string, status: 'running' | 'exited' = 'running'): ActualState => ({
    stack: 's',
    services: { nginx: { name: 'nginx', others: [], current: { id: 'c1', status, labels: { [LABELS.specHash]: hashSpec(spec(A)) }, mounts: [{ type: 'bind', source, target: '/etc/nginx/conf.d' }] } as never } },
  });
  const step = (to: ContainerSpec, o: Partial<PlanStep> = {}): PlanStep => ({ service: 'nginx', action: 'update', cause: 'changed', reasons: [], wave: 0, dependsOn: [], from: { containerId: 'c1', name: 's-nginx-1', image: IMAGE, hash: hashSpec(spec(A)), restartPolicy: 'always' }, to: target(to, 'r2'), ...o });
  const live = () => join(files, 'live', 'tx1', '0123456789abcdef');

  it('the folders content only, on a live folder: a reload', () => {
    expect(reloadOf(step(spec(B)), actualWith(live()), applied(spec(A)), files, () => true)).toEqual([{ target: '/etc/nginx/conf.d', path: live(), from: A, to: B }]);
  });

  it.each<[string, () => [PlanStep, ActualState, AppliedRecord | undefined]]>([
    ['the image changes too', () => [step(spec(B, `reg:5000/nginx:1.23.0@sha256:${'2'.repeat(64)}`)), actualWith(live()), applied(spec(A))]],
    ['the container binds the copy (created before x-agent.reload)', () => [step(spec(B)), actualWith(join(files, A)), applied(spec(A))]],
    ['the container is not running', () => [step(spec(B)), actualWith(live(), 'exited'), applied(spec(A))]],
    ['no record of what runs', () => [step(spec(B)), actualWith(live()), undefined]],
    ['the container is unhealthy', () => {
      const a = actualWith(live());
      a.services.nginx!.current = { ...a.services.nginx!.current!, health: 'unhealthy' };
      return [step(spec(B)), a, applied(spec(A))];
    }],
    ['the update is held (a repair)', () => [step(spec(B), { held: { kind: 'failed', image: IMAGE, hash: 'h', reason: 'x', at: 'y' } }), actualWith(live()), applied(spec(A))]],
    ['the service has no reload command', () => [{ ...step(spec(B)), to: { ...target(spec(B), 'r2'), agent: { ...agent, reload: undefined } as AgentOptions } }, actualWith(live()), applied(spec(A))]],
  ])('recreated when %s', (_what, make) => {
    const [s, a, r] = make();
    expect(reloadOf(s, a, r, files, () => true)).toBeUndefined();
  });

  it('recreated when its live folder is gone', () => {
    expect(reloadOf(step(spec(B)), actualWith(live()), applied(spec(A)), files, () => false)).toBeUndefined();
  });

  it('the kept container is seen with the hash of the spec it runs, while its label is the one of its creation', () => {
    const a = actualWith(live());
    const rec = { ...applied(spec(B)), container: { id: 'c1', label: hashSpec(spec(A)) } };
    expect(recogniseReloads(a, { nginx: rec }).services.nginx?.current?.labels[LABELS.specHash]).toBe(hashSpec(spec(B)));
    expect(recogniseReloads(a, { nginx: { ...rec, container: { id: 'other', label: hashSpec(spec(A)) } } }).services.nginx?.current?.labels[LABELS.specHash]).toBe(hashSpec(spec(A)));
  });
});
