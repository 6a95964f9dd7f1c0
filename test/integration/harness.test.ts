/**
 * Smoke test of the shared test environment (engine, registry, fixture images): if this
 * fails, every other integration test would fail for reasons unrelated to the agent.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { httpGet, removeTestContainers, runContainer, waitForHealth, waitUntil } from '../harness/containers.js';
import { pullImage } from '../harness/docker-util.js';
import { FIXTURE_VERSIONS } from '../harness/images.js';
import { freePort, uniqueName } from '../harness/ports.js';
import { harness } from '../harness/provided.js';

const h = harness();
const label = uniqueName('smoke');

afterAll(async () => {
  await removeTestContainers(h.docker, label);
});

describe('test harness', () => {
  it('talks to a private engine, not the host one', async () => {
    const info = await h.docker.info();
    expect(info.DockerRootDir).toBe(`${h.engineDir}/data`);
    expect(h.dockerHost).toBe(`unix://${h.socketPath}`);
  });

  it('has every fixture image locally and in the registry, with digests', async () => {
    const local = (await h.docker.listImages()).flatMap((i) => i.RepoTags ?? []);
    const res = await fetch(`http://${h.registryHost}/v2/fixture/web/tags/list`);
    const { tags } = (await res.json()) as { tags: string[] };
    for (const v of FIXTURE_VERSIONS) {
      const img = h.images[v];
      expect(local).toContain(img.ref);
      expect(tags).toContain(v);
      expect(img.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(img.pinned).toBe(`${h.registryHost}/fixture/web:${v}@${img.digest}`);
    }
  });

  it('runs the healthy image pinned by digest on a host port', async () => {
    const port = await freePort();
    const c = await runContainer(h.docker, { image: h.images['1.0.0'].pinned, env: { PORT: port }, labelValue: label });
    const page = await waitUntil('the web page', () => httpGet(port));
    expect(page).toEqual({ status: 200, body: '1.0.0\n' });
    expect(await httpGet(port, '/health')).toEqual({ status: 200, body: 'ok\n' });
    await waitForHealth(c, 'healthy', 15_000);
    // Init: true makes stop fast (docker-init forwards SIGTERM to httpd)
    const t0 = Date.now();
    await c.stop({ t: 10 });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('crash image exits with code 3 and says why', async () => {
    const c = await runContainer(h.docker, { image: h.images['1.3.0'].pinned, labelValue: label });
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    expect(StatusCode).toBe(3);
    const logs = (await c.logs({ stdout: true, stderr: true })).toString();
    expect(logs).toContain('fatal: config invalid');
  });

  it('never-healthy, slow and no-healthcheck images behave as documented', async () => {
    const [p4, p5, p6] = [await freePort(), await freePort(), await freePort()];
    const never = await runContainer(h.docker, { image: h.images['1.4.0'].ref, env: { PORT: p4 }, labelValue: label });
    const slow = await runContainer(h.docker, {
      image: h.images['1.5.0'].ref,
      env: { PORT: p5, SLOW_SECONDS: 3 },
      labelValue: label,
    });
    const plain = await runContainer(h.docker, { image: h.images['1.6.0'].ref, env: { PORT: p6 }, labelValue: label });
    expect(await httpGet(p5)).toBeUndefined(); // still sleeping
    expect((await slow.inspect()).State.Health?.Status).toBe('starting');
    await waitForHealth(never, 'unhealthy', 15_000);
    expect((await httpGet(p4, '/health'))?.status).toBe(404);
    await waitForHealth(slow, 'healthy', 15_000);
    expect((await httpGet(p5))?.body).toBe('1.5.0\n');
    expect((await plain.inspect()).Config.Healthcheck).toBeUndefined();
    expect(await waitUntil('1.6.0 page', () => httpGet(p6))).toEqual({ status: 200, body: '1.6.0\n' });
  });

  it('pulls a pinned image from the registry through the engine', async () => {
    const img = h.images['2.0.0'];
    // by ID: removing the tag alone would keep the image under its digest reference
    const { Id } = await h.docker.getImage(img.ref).inspect();
    await h.docker.getImage(Id).remove();
    await expect(h.docker.getImage(img.pinned).inspect()).rejects.toThrow();
    await pullImage(h.docker, img.pinned);
    const pulled = await h.docker.getImage(img.pinned).inspect();
    expect(pulled.RepoDigests).toContain(`${h.registryHost}/fixture/web@${img.digest}`);
    // put the tag back: other tests may expect the image under its tag
    await h.docker.getImage(img.pinned).tag({ repo: `${h.registryHost}/fixture/web`, tag: img.tag });
    expect((await h.docker.getImage(img.ref).inspect()).Id).toBe(pulled.Id);
  });
});
