/**
 * `docker exec` through the adapter leaves nothing on the signal it is given. `agent run` passes
 * one signal, as old as the process, to every health gate, and the gate runs the image's
 * HEALTHCHECK by exec while Docker says `starting`: a listener left per exec kept each exec's
 * stream and output alive for good (found by the soak run, docs/soak.md).
 */
import { getEventListeners } from 'node:events';
import { afterAll, expect, it } from 'vitest';
import { createDockerAdapter } from '../../agent/docker/dockerode-adapter.js';
import { asContainerId } from '../../agent/core/ids.js';
import { harness } from '../harness/provided.js';
import { freePort, uniqueName } from '../harness/ports.js';

const h = harness();
const created: string[] = [];
afterAll(async () => {
  for (const id of created) await h.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
});

it('removes its abort listener once the exec is over, whether it finished or timed out', async () => {
  const c = await h.docker.createContainer({
    name: uniqueName('exec-signal'),
    Image: h.images['1.0.0'].pinned,
    Env: [`PORT=${await freePort()}`],
    HostConfig: { NetworkMode: 'host', Init: true },
  });
  created.push(c.id);
  await c.start();
  const docker = createDockerAdapter({ host: h.dockerHost, dockerConfigPath: '/nonexistent/config.json' });
  const signal = new AbortController().signal;
  for (let i = 0; i < 3; i++) {
    const r = await docker.exec(asContainerId(c.id), ['echo', `run ${i}`], { timeoutMs: 10_000, signal });
    expect(r).toEqual({ exitCode: 0, output: `run ${i}` });
  }
  const slow = await docker.exec(asContainerId(c.id), ['sleep', '5'], { timeoutMs: 200, signal });
  expect(slow.exitCode).toBe(-1);
  expect(getEventListeners(signal, 'abort')).toHaveLength(0);
});
