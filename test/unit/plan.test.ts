import { describe, expect, it } from 'vitest';
import { asContainerId, asImageRef, asRevision, asSpecHash } from '../../agent/core/ids.js';
import { LABELS } from '../../agent/core/labels.js';
import type { ContainerSpec, DesiredService, DesiredState } from '../../agent/model/desired.js';
import { hashSpec } from '../../agent/desired/load.js';
import type { ContainerInfo } from '../../agent/model/actual.js';
import { groupByService } from '../../agent/observe/observe.js';
import { planChanges } from '../../agent/plan/plan.js';
import { dependencyWaves } from '../../agent/plan/order.js';
import { planView } from '../../agent/plan/view.js';
import type { StepCause } from '../../agent/model/plan.js';
import type { AppliedRecord, HeldRecord } from '../../agent/model/records.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const img = (tag: string, d = 'a') => `reg:5000/app:${tag}@${D(d)}`;

function spec(image: string, extra: Partial<ContainerSpec> = {}): ContainerSpec {
  return { image: asImageRef(image), environment: {}, ports: [], volumes: [], networkMode: 'host', restart: 'no', labels: {}, ...extra };
}

function service(name: string, s: ContainerSpec, deps: string[] = []): DesiredService {
  return {
    name,
    spec: s,
    hash: hashSpec(s),
    agent: { policy: 'auto', health: { timeoutMs: 1000, stabilizationMs: 0, probes: [] } },
    dependsOn: deps.map((d) => ({ service: d, condition: 'service_started' as const })),
    location: { file: 'f.yaml', line: 1, column: 1 },
  };
}

function desired(...services: DesiredService[]): DesiredState {
  return { stack: 's', revision: asRevision('dir:1'), services: Object.fromEntries(services.map((x) => [x.name, x])), volumes: {}, networks: {}, backups: { retention: { keep: 7 } }, jobs: {}, files: ['f.yaml'] };
}

function container(name: string, s: ContainerSpec, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return {
    id: asContainerId(`id-${name}`),
    name: `s-${name}`,
    image: s.image,
    imageId: 'sha256:x',
    labels: { [LABELS.managed]: 'true', [LABELS.stack]: 's', [LABELS.service]: name, [LABELS.specHash]: hashSpec(s) },
    status: 'running',
    exitCode: 0,
    oomKilled: false,
    error: '',
    health: 'healthy',
    healthOutput: '',
    hasHealthcheck: true,
    restartCount: 0,
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: '',
    restartPolicy: 'no',
    ...over,
  };
}

function applied(name: string, s: ContainerSpec): AppliedRecord {
  const d = service(name, s);
  return { hash: d.hash, spec: s, agent: d.agent, dependsOn: [], revision: 'dir:0', at: '2026-01-01T00:00:00Z' };
}

const v1 = spec(img('1.22.6', 'a'));
const v2 = spec(img('1.23.0', 'b'));

interface Row {
  name: string;
  desired: DesiredState;
  running: ContainerInfo[];
  applied?: Record<string, AppliedRecord>;
  held?: Record<string, HeldRecord>;
  prune?: boolean;
  expect: { service: string; action: string; cause: StepCause; reasons: string[] }[];
}

const ROWS: Row[] = [
  { name: 'first deploy', desired: desired(service('web', v1)), running: [], expect: [{ service: 'web', action: 'create', cause: 'new', reasons: ['new service'] }] },
  { name: 'in sync', desired: desired(service('web', v1)), running: [container('web', v1)], applied: { web: applied('web', v1) }, expect: [{ service: 'web', action: 'none', cause: 'in-sync', reasons: ['up to date'] }] },
  { name: 'image update', desired: desired(service('web', v2)), running: [container('web', v1)], applied: { web: applied('web', v1) }, expect: [{ service: 'web', action: 'update', cause: 'changed', reasons: ['image 1.22.6 -> 1.23.0'] }] },
  {
    name: 'digest only',
    desired: desired(service('web', spec(img('1.22.6', 'c')))),
    running: [container('web', v1)],
    applied: { web: applied('web', v1) },
    expect: [{ service: 'web', action: 'update', cause: 'changed', reasons: [`image digest sha256:${'a'.repeat(12)} -> sha256:${'c'.repeat(12)}`] }],
  },
  {
    name: 'environment changed, values never shown',
    desired: desired(service('web', spec(v1.image, { environment: { A: 'secret-new', C: '1' } }))),
    running: [container('web', spec(v1.image, { environment: { A: 'secret-old', B: '1' } }))],
    applied: { web: applied('web', spec(v1.image, { environment: { A: 'secret-old', B: '1' } })) },
    expect: [{ service: 'web', action: 'update', cause: 'changed', reasons: ['environment changed (added C; removed B; changed A)'] }],
  },
  { name: 'container exited', desired: desired(service('web', v1)), running: [container('web', v1, { status: 'exited', exitCode: 137 })], applied: { web: applied('web', v1) }, expect: [{ service: 'web', action: 'update', cause: 'stopped', reasons: ['container exited (exit code 137)'] }] },
  { name: 'container removed', desired: desired(service('web', v1)), running: [], applied: { web: applied('web', v1) }, expect: [{ service: 'web', action: 'create', cause: 'missing', reasons: ['container missing (removed outside the agent)'] }] },
  {
    name: 'changed outside the agent',
    desired: desired(service('web', v1)),
    running: [container('web', v1, { labels: { [LABELS.managed]: 'true', [LABELS.stack]: 's', [LABELS.service]: 'web', [LABELS.specHash]: 'other' } })],
    applied: { web: applied('web', v1) },
    expect: [{ service: 'web', action: 'update', cause: 'drift', reasons: ['running container does not match the last applied spec'] }],
  },
  {
    name: 'held: the failed spec is not retried, the running one is kept',
    desired: desired(service('web', v2)),
    running: [container('web', v1)],
    applied: { web: applied('web', v1) },
    held: { web: { hash: hashSpec(v2), image: v2.image, revision: 'dir:2', reason: 'rolled back: probe failed', at: 't' } },
    expect: [{ service: 'web', action: 'none', cause: 'held', reasons: ['held: 1.22.6 -> 1.23.0 failed; keeping the last applied spec'] }],
  },
  {
    name: 'held, and the old container was removed: repaired from the last applied spec',
    desired: desired(service('web', v2)),
    running: [],
    applied: { web: applied('web', v1) },
    held: { web: { hash: hashSpec(v2), image: v2.image, revision: 'dir:2', reason: 'x', at: 't' } },
    expect: [{ service: 'web', action: 'create', cause: 'missing', reasons: ['held: 1.22.6 -> 1.23.0 failed; keeping the last applied spec', 'container missing (removed outside the agent)'] }],
  },
  {
    name: 'a failure of an older spec does not hold a newer one',
    desired: desired(service('web', v2)),
    running: [container('web', v1)],
    applied: { web: applied('web', v1) },
    held: { web: { hash: 'older', image: 'x', revision: 'dir:0', reason: 'x', at: 't' } },
    expect: [{ service: 'web', action: 'update', cause: 'changed', reasons: ['image 1.22.6 -> 1.23.0'] }],
  },
  { name: 'orphan kept without pruning', desired: desired(), running: [container('old', v1)], expect: [{ service: 'old', action: 'none', cause: 'orphan', reasons: ['no longer in the desired state; kept because pruning is disabled'] }] },
  { name: 'orphan removed with pruning', desired: desired(), running: [container('old', v1)], prune: true, expect: [{ service: 'old', action: 'remove', cause: 'orphan', reasons: ['no longer in the desired state'] }] },
  {
    name: 'dependency order, ties by name',
    desired: desired(service('nginx', v1, ['gitea']), service('gitea', v1, ['postgres']), service('postgres', v1), service('adminer', v1)),
    running: [],
    expect: ['adminer', 'postgres', 'gitea', 'nginx'].map((s) => ({ service: s, action: 'create', cause: 'new', reasons: ['new service'] })),
  },
];

describe('planChanges', () => {
  it.each(ROWS)('$name', (row) => {
    const plan = planChanges({ desired: row.desired, actual: groupByService('s', row.running), applied: row.applied ?? {}, held: row.held ?? {}, prune: row.prune ?? false });
    expect(plan.steps.map((s) => ({ service: s.service, action: s.action, cause: s.cause, reasons: s.reasons }))).toEqual(row.expect);
    expect(plan.changes).toBe(row.expect.filter((e) => e.action !== 'none').length);
  });

  it('is deterministic and JSON-serialisable', () => {
    const row = ROWS[ROWS.length - 1] as Row;
    const input = { desired: row.desired, actual: groupByService('s', row.running), applied: {}, held: {}, prune: false };
    const a = JSON.stringify(planChanges(input));
    expect(JSON.stringify(planChanges(input))).toBe(a);
    expect(JSON.parse(a)).toMatchObject({ stack: 's', revision: 'dir:1', changes: 4 });
  });

  it('never shows environment values: the plan carries them, its view does not', () => {
    const d = desired(service('web', spec(v1.image, { environment: { PASSWORD: 'hunter2' } })));
    const plan = planChanges({ desired: d, actual: groupByService('s', [container('web', spec(v1.image, { environment: { PASSWORD: 'old-secret' } }))]), applied: { web: applied('web', spec(v1.image, { environment: { PASSWORD: 'old-secret' } })) }, held: {}, prune: false });
    expect(JSON.stringify(plan)).toMatch(/hunter2/);
    expect(JSON.stringify(planView(plan))).not.toMatch(/hunter2|old-secret/);
    expect(planView(plan).steps[0]).toMatchObject({ service: 'web', action: 'update', cause: 'changed', to: { image: v1.image } });
  });
});

describe('dependencyWaves: the one dependency walk', () => {
  it.each([
    [[{ name: 'b', dependsOn: ['a'] }, { name: 'a', dependsOn: [] }], [['a'], ['b']]],
    [[{ name: 'c', dependsOn: [] }, { name: 'b', dependsOn: [] }, { name: 'a', dependsOn: ['c'] }], [['b', 'c'], ['a']]],
    [[{ name: 'x', dependsOn: ['missing'] }], [['x']]],
    [[{ name: 'p', dependsOn: ['q'] }, { name: 'q', dependsOn: ['p'] }, { name: 'r', dependsOn: [] }], [['r'], ['p', 'q']]],
  ])('%j -> %j', (services, expected) => {
    expect(dependencyWaves(services)).toEqual(expected);
  });

  it('gives every step its wave, removals last, and the executor nothing to recompute', () => {
    const d = desired(service('nginx', v1, ['gitea']), service('gitea', v1, ['postgres']), service('postgres', v1), service('adminer', v1));
    const plan = planChanges({ desired: d, actual: groupByService('s', [container('old', v1)]), applied: {}, held: {}, prune: true });
    expect(plan.steps.map((s) => [s.service, s.wave])).toEqual([['adminer', 0], ['postgres', 0], ['gitea', 1], ['nginx', 2], ['old', 3]]);
    const gitea = plan.steps.find((s) => s.service === 'gitea');
    expect(gitea?.to).toMatchObject({ hash: hashSpec(v1), image: v1.image, revision: 'dir:1', dependsOn: [{ service: 'postgres', condition: 'service_started' }], externalVolumes: [] });
    expect(gitea?.to?.spec).toEqual(v1);
  });

  it('targets the last applied spec, with its revision, while the desired one is held', () => {
    const plan = planChanges({ desired: desired(service('web', v2)), actual: groupByService('s', []), applied: { web: applied('web', v1) }, held: { web: { hash: hashSpec(v2), image: v2.image, revision: 'dir:2', reason: 'x', at: 't' } }, prune: false });
    expect(plan.steps[0]).toMatchObject({ action: 'create', cause: 'missing', held: { kind: 'failed', hash: hashSpec(v2) }, to: { hash: hashSpec(v1), revision: 'dir:0' } });
  });
});

it('hashSpec changes with any container field and not with key order', () => {
  expect(hashSpec(spec('a:1', { environment: { A: '1', B: '2' } }))).toBe(hashSpec(spec('a:1', { environment: { B: '2', A: '1' } })));
  expect(hashSpec(spec('a:1'))).not.toBe(hashSpec(spec('a:1', { user: 'nobody' })));
  expect(asSpecHash(hashSpec(v1))).toMatch(/^[0-9a-f]{64}$/);
});

describe('paused services', () => {
  const paused = (s: ContainerSpec) => ({ ...service('web', s), agent: { policy: 'auto' as const, paused: true, health: { timeoutMs: 1000, stabilizationMs: 0, probes: [] } } });
  it.each([
    ['a change is not applied', [container('web', v1)], { web: applied('web', v1) }, 'none', ['paused (x-agent.paused): keeping the last applied spec']],
    ['drift is still repaired from the last applied spec', [], { web: applied('web', v1) }, 'create', ['paused (x-agent.paused): keeping the last applied spec', 'container missing (removed outside the agent)']],
    ['a new service is not created', [], {}, 'none', ['paused (x-agent.paused): not created']],
  ])('%s', (_n, running, appliedRecords, action, reasons) => {
    const plan = planChanges({ desired: desired(paused(v2)), actual: groupByService('s', running as ContainerInfo[]), applied: appliedRecords as Record<string, AppliedRecord>, held: {}, prune: false });
    expect(plan.steps[0]).toMatchObject({ action, reasons });
  });
});

describe('maintenance windows', () => {
  const inWindow = (s: ContainerSpec) => ({ ...service('web', s), agent: { policy: 'auto' as const, window: { schedule: '0 22 * * *', durationMs: 2 * 3_600_000, timezone: 'UTC' }, health: { timeoutMs: 1000, stabilizationMs: 0, probes: [] } } });
  const plan = (now: string, running: ContainerInfo[], ignore?: string[]) =>
    planChanges({ desired: desired(inWindow(v2)), actual: groupByService('s', running), applied: { web: applied('web', v1) }, held: {}, prune: false, now: Date.parse(now), ...(ignore ? { ignoreWindows: new Set(ignore) } : {}) }).steps[0];

  it.each([
    ['outside the window: the update waits, and says until when', '2026-11-22T12:00:00Z', undefined, 'none', '2026-11-22T22:00:00.000Z'],
    ['inside the window: applied', '2026-11-22T23:30:00Z', undefined, 'update', undefined],
    ['just after it closed: waits for the next day', '2026-11-23T00:00:01Z', undefined, 'none', '2026-11-23T22:00:00.000Z'],
    ['--now for this service: applied', '2026-11-22T12:00:00Z', ['web'], 'update', undefined],
    ['--now for all: applied', '2026-11-22T12:00:00Z', ['*'], 'update', undefined],
  ])('%s', (_n, now, ignore, action, deferred) => {
    const step = plan(now, [container('web', v1)], ignore);
    expect(step).toMatchObject({ action });
    expect(step?.deferred).toBe(deferred);
  });

  it('drift is repaired outside the window, with the spec applied last', () => {
    expect(plan('2026-11-22T12:00:00Z', [])).toMatchObject({ action: 'create', to: { image: v1.image } });
  });
});
