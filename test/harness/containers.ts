/**
 * Helpers for tests that run containers themselves (outside the agent): always host
 * networking (tests only talk to 127.0.0.1) and labelled, so a test can clean up after itself.
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { uniqueName } from './ports.js';

/** Label put on every container created through these helpers; value = the test's prefix. */
export const TEST_LABEL = 'gadt.test';

export interface RunOptions {
  image: string;
  /** Container name; default uniqueName(labelValue). */
  name?: string;
  env?: Record<string, string | number>;
  cmd?: string[];
  /** Value of the TEST_LABEL label (used by removeTestContainers). Default 'test'. */
  labelValue?: string;
  labels?: Record<string, string>;
  /** docker-init as PID 1, so SIGTERM stops busybox httpd at once. Default true. */
  init?: boolean;
  restartPolicy?: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  binds?: string[];
  /** Create only. Default false (create and start). */
  noStart?: boolean;
}

/** Create (and start) a host-network container. createContainer never pulls. */
export async function runContainer(docker: Docker, o: RunOptions): Promise<Docker.Container> {
  const labelValue = o.labelValue ?? 'test';
  const container = await docker.createContainer({
    name: o.name ?? uniqueName(labelValue),
    Image: o.image,
    Cmd: o.cmd,
    Env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { ...o.labels, [TEST_LABEL]: labelValue },
    HostConfig: {
      NetworkMode: 'host',
      Init: o.init ?? true,
      RestartPolicy: { Name: o.restartPolicy ?? 'no' },
      Binds: o.binds,
    },
  });
  if (!o.noStart) await container.start();
  return container;
}

/**
 * Runs a container to its end with no network (a tool: restic, a shell) and collects its
 * output, then removes it.
 */
export async function runToEnd(docker: Docker, o: { image: string; cmd: string[]; binds?: string[]; env?: string[]; labelValue?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  const container = await docker.createContainer({
    name: uniqueName(o.labelValue ?? 'test'),
    Image: o.image,
    Cmd: o.cmd,
    Env: o.env ?? [],
    Labels: { [TEST_LABEL]: o.labelValue ?? 'test' },
    HostConfig: { NetworkMode: 'none', Binds: o.binds ?? [] },
  });
  try {
    const out = new PassThrough();
    const err = new PassThrough();
    let stdout = '';
    let stderr = '';
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    err.on('data', (d: Buffer) => (stderr += d.toString()));
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    docker.modem.demuxStream(stream, out, err);
    const ended = new Promise<void>((resolve) => stream.once('end', resolve));
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    await ended;
    return { code: StatusCode, stdout, stderr };
  } finally {
    await container.remove({ force: true });
  }
}

/** Force-remove the containers carrying TEST_LABEL (=labelValue if given), with volumes. */
export async function removeTestContainers(docker: Docker, labelValue?: string): Promise<void> {
  const label = labelValue === undefined ? TEST_LABEL : `${TEST_LABEL}=${labelValue}`;
  const list = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
}

/** Poll `check` until it returns a value other than undefined/false, or fail after timeoutMs. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Wait for the container's Docker health status (needs a HEALTHCHECK in the image). */
export function waitForHealth(c: Docker.Container, status: 'healthy' | 'unhealthy', timeoutMs = 30_000): Promise<true> {
  return waitUntil(`${c.id.slice(0, 12)} to become ${status}`, async () => {
    const info = await c.inspect();
    return info.State.Health?.Status === status;
  }, timeoutMs);
}

/** Body of an HTTP GET to 127.0.0.1:port (undefined while nothing listens). */
export async function httpGet(port: number, path = '/'): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}
