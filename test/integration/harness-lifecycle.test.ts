/**
 * The harness's failure-injection tools work: a test-owned engine can be restarted (cleanly
 * or by SIGKILL) and a test-owned registry can be taken down and brought back. Tests that
 * need these start their own engine/registry: the shared ones live in the vitest main
 * process, out of reach of test files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet, runContainer, waitUntil } from '../harness/containers.js';
import { pullImage } from '../harness/docker-util.js';
import { startTestEngine, type TestEngine } from '../harness/engine.js';
import { freePort } from '../harness/ports.js';
import { harness } from '../harness/provided.js';
import { startRegistry, type TestRegistry } from '../harness/registry.js';

const h = harness();
let engine: TestEngine;
let registry: TestRegistry;
/** A fixture image by digest in this file's registry (same content, so same digest). */
const pinned = (v: '1.0.0' | '1.1.0'): string => `${registry.host}/fixture/web@${h.images[v].digest}`;

beforeAll(async () => {
  [engine, registry] = await Promise.all([startTestEngine(), startRegistry({ seedFrom: h.registryDir })]);
});

afterAll(async () => {
  await Promise.allSettled([engine?.stop(), registry?.stop()]);
});

describe('failure injection', () => {
  it('a seeded registry serves the shared images; pause makes pulls fail, resume fixes them', async () => {
    await pullImage(engine.docker, pinned('1.0.0'));
    await registry.pause();
    const t0 = Date.now();
    await expect(pullImage(engine.docker, pinned('1.1.0'))).rejects.toThrow(/connection refused|dial tcp/i);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await registry.resume();
    await pullImage(engine.docker, pinned('1.1.0'));
    expect(await registry.tags('fixture/web')).toContain('1.1.0');
  });

  it('containers with a restart policy come back after a clean daemon restart and after a crash', async () => {
    const port = await freePort();
    const c = await runContainer(engine.docker, {
      image: pinned('1.0.0'),
      env: { PORT: port },
      restartPolicy: 'always',
    });
    await waitUntil('page', () => httpGet(port));
    const pid1 = engine.pid;

    await engine.restart();
    expect(engine.pid).not.toBe(pid1);
    expect((await waitUntil('page after restart', () => httpGet(port)))?.body).toBe('1.0.0\n');

    await engine.restart({ signal: 'SIGKILL' });
    const state = await waitUntil('running after crash', async () => (await c.inspect()).State.Running);
    expect(state).toBe(true);
    expect((await waitUntil('page after crash', () => httpGet(port)))?.body).toBe('1.0.0\n');
  });

  it('the engine is unreachable while stopped', async () => {
    await engine.stopDaemon();
    await expect(engine.docker.ping()).rejects.toThrow();
    await engine.startDaemon();
    expect(String(await engine.docker.ping())).toBe('OK');
  });
});
