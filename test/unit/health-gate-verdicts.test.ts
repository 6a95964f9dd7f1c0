import { describe, expect, it } from 'vitest';
import { asImageRef } from '../../agent/core/ids.js';
import { describeGateFailure, runHealthGate } from '../../agent/health/gate.js';
import type { GateFailure } from '../../agent/model/health.js';
import { fakeClock } from './fakes/clock.js';
import { FakeDocker, type Behaviour } from './fakes/fake-docker.js';

const IMAGE = `reg:5000/web:1.0.0@sha256:${'1'.repeat(64)}`;

async function gateOf(behaviour: Behaviour, restart: 'no' | 'always') {
  const docker = new FakeDocker();
  docker.addImage(IMAGE, behaviour, true);
  const id = await docker.createContainer({ name: 's-web', spec: { image: asImageRef(IMAGE), environment: {}, ports: [], volumes: [], networkMode: 'host', restart, labels: {} }, labels: {} });
  await docker.startContainer(id);
  return runHealthGate({ docker, clock: fakeClock(), pollMs: 100 }, id, { timeoutMs: 5000, stabilizationMs: 1000, probes: [] });
}

describe('the health gate: a typed verdict', () => {
  it.each<[string, Behaviour, 'no' | 'always', Partial<GateFailure>]>([
    ['exits and stays down', 'crash', 'no', { kind: 'exited', exitCode: 3 }],
    // Docker says "running, exit code 0" once it restarted the container: the code comes from its events.
    ['crash-loops under its restart policy', 'crash-loop', 'always', { kind: 'restarted', exitCode: 127 }],
    ['turns unhealthy', 'unhealthy', 'no', { kind: 'unhealthy' }],
  ])('%s', async (_name, behaviour, restart, failure) => {
    const v = await gateOf(behaviour, restart);
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.failure).toMatchObject(failure);
    expect(v.reason).toBe(describeGateFailure(v.failure, v.stabilizing));
  });

  it('passes a healthy container', async () => {
    expect(await gateOf('healthy', 'always')).toMatchObject({ ok: true });
  });

  it.each<[string, (n: number) => boolean, Partial<GateFailure>]>([
    // passes, then fails three times in a row during the stabilisation window
    ['a probe that passes and then keeps failing', (n) => n === 1, { kind: 'probe-failed', probe: 'http http://127.0.0.1:8080/', failures: 3, detail: 'got 500' }],
    ['a probe that never passes before the deadline', () => false, { kind: 'timed-out', afterMs: 3000 }],
  ])('%s', async (_name, ok, failure) => {
    const docker = new FakeDocker();
    docker.addImage(IMAGE, 'no-healthcheck', true);
    const id = await docker.createContainer({ name: 's-web', spec: { image: asImageRef(IMAGE), environment: {}, ports: [], volumes: [], networkMode: 'host', restart: 'no', labels: {} }, labels: {} });
    await docker.startContainer(id);
    let n = 0;
    const v = await runHealthGate({ docker, clock: fakeClock(), pollMs: 100, runProbe: async () => (++n, ok(n) ? { ok: true, detail: 'got 200' } : { ok: false, detail: 'got 500' }) }, id, { timeoutMs: 3000, stabilizationMs: 10_000, probes: [{ kind: 'http', url: 'http://127.0.0.1:8080/', expectStatus: [], intervalMs: 100, timeoutMs: 1000, retries: 3 }] });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.failure).toMatchObject(failure);
  });

  it('says the exit code of a crash loop, never "code 0"', async () => {
    const v = await gateOf('crash-loop', 'always');
    expect(!v.ok && v.reason).toMatch(/^container exited with code 127 and was restarted by its restart policy/);
  });

  it.each<[GateFailure, string]>([
    [{ kind: 'exited', exitCode: 1, oomKilled: true, output: 'killed' }, 'container exited with code 1 (out of memory); output: killed'],
    [{ kind: 'restarted', restarts: 3 }, 'container exited and was restarted by its restart policy (3 times)'],
    [{ kind: 'probe-failed', probe: 'http http://127.0.0.1/', failures: 3, detail: 'got 500' }, 'probe http http://127.0.0.1/ failed 3 times in a row: got 500'],
    [{ kind: 'timed-out', afterMs: 60_000, pending: 'Docker health is starting' }, 'not healthy after 60s: Docker health is starting'],
  ])('words %j', (failure, words) => {
    expect(describeGateFailure(failure)).toBe(words);
  });
});
