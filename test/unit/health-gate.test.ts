import { describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/core/errors.js';
import type { ContainerId } from '../../agent/core/ids.js';
import type { DockerPort } from '../../agent/ports/docker.js';
import type { ContainerHealth, ContainerInfo } from '../../agent/model/actual.js';
import { runHealthGate } from '../../agent/health/gate.js';
import { fakeClock } from './fakes/clock.js';

const ID = 'c0ffee' as ContainerId;

/**
 * A container whose Docker health follows `dockerHealth(t)` (t: ms since start) and whose
 * HEALTHCHECK command, run by exec, succeeds from `execOkFrom` ms on.
 */
function container(o: { dockerHealth: (t: number) => ContainerHealth; execOkFrom?: number; command?: boolean; exitedFrom?: number; engineGoneFrom?: number }) {
  const clock = fakeClock();
  const t0 = clock.now();
  const execs: { at: number; argv: string[] }[] = [];
  const info = (): ContainerInfo => ({
    id: ID,
    name: 'web',
    image: 'web:1',
    imageId: 'sha256:1',
    labels: {},
    status: o.exitedFrom !== undefined && clock.now() - t0 >= o.exitedFrom ? 'exited' : 'running',
    exitCode: o.exitedFrom !== undefined && clock.now() - t0 >= o.exitedFrom ? 143 : 0,
    oomKilled: false,
    error: '',
    health: o.dockerHealth(clock.now() - t0),
    healthOutput: '',
    hasHealthcheck: true,
    ...(o.command === false ? {} : { healthcheckCommand: { argv: ['/bin/sh', '-c', 'wget -q -O- http://127.0.0.1:8080/'], timeoutMs: 2000 } }),
    restartCount: 0,
    startedAt: '2026-11-22T10:00:00Z',
    finishedAt: '',
    restartPolicy: 'no',
  });
  const docker = {
    // A fresh connection: refused once the engine is going away (open ones still answer meanwhile).
    ping: async () => {
      if (o.engineGoneFrom !== undefined && clock.now() - t0 >= o.engineGoneFrom) throw new AgentError('DOCKER_UNAVAILABLE', 'Docker engine unreachable (ENOENT) during ping');
    },
    inspectContainer: async () => info(),
    logs: async () => '',
    exec: async (_id: ContainerId, argv: string[]) => {
      execs.push({ at: clock.now() - t0, argv });
      return { exitCode: o.execOkFrom !== undefined && clock.now() - t0 >= o.execOkFrom ? 0 : 1, output: '' };
    },
  } as unknown as DockerPort;
  return { clock, docker, execs };
}

const opts = (stabilizationMs = 0) => ({ timeoutMs: 60_000, stabilizationMs, probes: [] });

describe('health gate and the Docker HEALTHCHECK', () => {
  it('runs the HEALTHCHECK command itself while Docker says starting, and passes on its first success', async () => {
    const c = container({ dockerHealth: (t) => (t < 30_000 ? 'starting' : 'healthy'), execOkFrom: 700 });
    const v = await runHealthGate({ docker: c.docker, clock: c.clock }, ID, opts());
    expect(v).toMatchObject({ ok: true });
    expect(v.durationMs).toBeLessThan(2000);
    expect(c.execs[0]).toEqual({ at: 0, argv: ['/bin/sh', '-c', 'wget -q -O- http://127.0.0.1:8080/'] });
    // 0, 100, 300, 700: a growing delay, no busy loop
    expect(c.execs.map((e) => e.at)).toEqual([0, 100, 300, 700]);
  });

  it('waits for Docker when the image has no command to exec, and fails on its unhealthy verdict', async () => {
    const c = container({ dockerHealth: (t) => (t < 5000 ? 'starting' : 'unhealthy'), command: false });
    const v = await runHealthGate({ docker: c.docker, clock: c.clock }, ID, opts());
    expect(v).toMatchObject({ ok: false, reason: expect.stringContaining('Docker health check reports unhealthy') });
    expect(c.execs).toHaveLength(0);
  });

  it('keeps trying at most once a second while the command fails, and Docker unhealthy still fails', async () => {
    const c = container({ dockerHealth: (t) => (t < 8000 ? 'starting' : 'unhealthy') });
    const v = await runHealthGate({ docker: c.docker, clock: c.clock }, ID, opts());
    expect(v.ok).toBe(false);
    const gaps = c.execs.slice(1).map((e, i) => e.at - (c.execs[i]?.at ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1100);
    expect(c.execs.length).toBeLessThan(15);
  });

  it('an early pass does not outrank Docker: unhealthy during the stabilisation window fails the gate', async () => {
    const c = container({ dockerHealth: (t) => (t < 3000 ? 'starting' : 'unhealthy'), execOkFrom: 0 });
    const v = await runHealthGate({ docker: c.docker, clock: c.clock }, ID, opts(10_000));
    expect(v).toMatchObject({ ok: false, reason: expect.stringContaining('during the stabilisation window') });
  });

  it('a container stopped by an engine that is going away is no verdict on the version: the engine error is thrown', async () => {
    // dockerd stops its containers on shutdown while it still answers on connections already open
    const c = container({ dockerHealth: () => 'healthy', exitedFrom: 2000, engineGoneFrom: 1900 });
    await expect(runHealthGate({ docker: c.docker, clock: c.clock }, ID, opts(10_000))).rejects.toMatchObject({ code: 'DOCKER_UNAVAILABLE' });
    const crashed = container({ dockerHealth: () => 'healthy', exitedFrom: 2000 });
    expect(await runHealthGate({ docker: crashed.docker, clock: crashed.clock }, ID, opts(10_000))).toMatchObject({ ok: false, reason: expect.stringContaining('container exited with code 143') });
  });
});
