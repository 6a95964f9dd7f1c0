/**
 * The listener of `agent run` under abuse, on 127.0.0.1: malformed requests, bodies where none
 * belong, oversized ones, a slow client, more connections than the cap, replayed webhooks, and
 * about a thousand mixed requests. The agent stays up, answers every request it reads, and its
 * memory comes back to its level.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

let f: AgentFixture;
beforeEach(async () => {
  f = await AgentFixture.create();
});
afterEach(async () => {
  await f.cleanup();
});

/** Sends raw bytes and returns what comes back until the server closes (or 5 s pass). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = connect(port, '127.0.0.1', () => s.write(text));
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, 5000);
    s.on('data', (d) => (out += d.toString()));
    s.on('close', done);
    s.on('error', done);
  });
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

it('answers malformed requests with 400, refuses bodies it does not take, cuts slow clients off, caps connections, refuses replays, survives a thousand mixed requests, and its memory comes back', async () => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'listener-'));
  const secretFile = join(dir, 'webhook-secret');
  const tokenFile = join(dir, 'metrics-token');
  const config = join(dir, 'config.yaml');
  writeFileSync(secretFile, 'hook-secret\n', { mode: 0o600 });
  writeFileSync(tokenFile, 'metrics-token\n', { mode: 0o600 });
  writeFileSync(config, `webhook: {secretFile: ${secretFile}, rejectReplays: true}\nhttp: {metricsTokenFile: ${tokenFile}}\n`);
  f.writeDesired(f.webYaml({ version: '1.0.0' }));
  const agent = f.start('run', ['--interval', '1h', '--listen', `127.0.0.1:${port}`, '--config', config]);
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  const healthy = async () => (await fetch(url('/healthz')).then((r) => r.status, () => 0)) === 200;
  try {
    await eventually('the listener', healthy, 60_000);

    // request targets the old listener threw on (and so exited): 400, and it answers again
    for (const target of ['//', '//evil:99999/x', 'http://[::1', '*']) expect(await raw(port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`), target).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(port, 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 404/);
    expect(await raw(port, 'NOT A REQUEST\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect(await healthy()).toBe(true);

    // bodies: none on a GET, 512 KiB at most for the webhook, refused before they are read
    expect(await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789')).toMatch(/^HTTP\/1\.1 413/);
    expect(await raw(port, 'POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: 600000\r\n\r\n')).toMatch(/^HTTP\/1\.1 413/);

    // /metrics wants its token
    expect((await fetch(url('/metrics'))).status).toBe(401);
    expect((await fetch(url('/metrics'), { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const metrics = await fetch(url('/metrics'), { headers: { authorization: 'Bearer metrics-token' } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('gitops_agent_');

    // a signed webhook is accepted once per delivery id; its replay, or one without an id, is refused
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const signature = createHmac('sha256', 'hook-secret').update(body).digest('hex');
    const hook = (delivery?: string) => fetch(url('/hooks/git'), { method: 'POST', body, headers: { 'x-gitea-signature': signature, ...(delivery ? { 'x-gitea-delivery': delivery } : {}) } }).then((r) => r.status);
    expect(await hook('delivery-1')).toBe(202);
    expect(await hook('delivery-1')).toBe(409);
    expect(await hook()).toBe(409);

    // a slow client that never finishes its headers is cut off (10 s for the headers)
    const slow = connect(port, '127.0.0.1', () => slow.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    let answer = '';
    slow.on('data', (d) => (answer += d.toString()));
    const cut = await new Promise<boolean>((resolve) => {
      const guard = setTimeout(() => resolve(false), 60_000);
      slow.on('close', () => {
        clearTimeout(guard);
        resolve(true);
      });
      slow.on('error', () => undefined);
    });
    expect(cut).toBe(true);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);

    // idle connections: 64 at most; the others are dropped, and once they close it answers again
    const idle: Socket[] = [];
    let dropped = 0;
    await Promise.all(
      Array.from(
        { length: 80 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(port, '127.0.0.1', () => resolve());
            s.resume();
            s.on('close', () => dropped++);
            s.on('error', () => resolve());
            idle.push(s);
          }),
      ),
    );
    await eventually('the connections over the cap to be dropped', async () => dropped >= 80 - 64, 10_000, 100);
    for (const s of idle) s.destroy();
    await eventually('the listener after the idle connections', healthy, 30_000);

    // about a thousand mixed requests, 20 at a time: every one answered
    const before = rssMiB(agent.pid);
    const kinds: (() => Promise<number>)[] = [
      () => fetch(url('/healthz')).then((r) => r.status),
      () => fetch(url('/metrics'), { headers: { authorization: 'Bearer metrics-token' } }).then(async (r) => (await r.text(), r.status)),
      () => fetch(url('/metrics')).then((r) => r.status),
      () => fetch(url('/nope')).then((r) => r.status),
      () => fetch(url('/hooks/git'), { method: 'POST', body, headers: { 'x-gitea-signature': '0'.repeat(64), 'x-gitea-delivery': 'x' } }).then((r) => r.status),
      () => fetch(url('/hooks/git'), { method: 'POST', body: 'x'.repeat(100_000), headers: { 'x-gitea-signature': '0'.repeat(64) } }).then((r) => r.status),
      () => raw(port, 'GET // HTTP/1.1\r\nHost: x\r\n\r\n').then((t) => Number(/^HTTP\/1\.1 (\d{3})/.exec(t)?.[1] ?? 0)),
    ];
    const expected = [200, 200, 401, 404, 401, 401, 400];
    const seen = new Map<string, number>();
    for (let i = 0; i < 1000; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => kinds[(i + j) % kinds.length]!().then((status) => ({ k: (i + j) % kinds.length, status }))));
      for (const { k, status } of batch) seen.set(`${k}:${status}`, (seen.get(`${k}:${status}`) ?? 0) + 1);
    }
    // each kind got its own answer, every time
    expect([...seen.keys()].sort()).toEqual(expected.map((s, k) => `${k}:${s}`).sort());
    expect([...seen.values()].reduce((a, b) => a + b, 0)).toBe(1000);
    expect(await healthy()).toBe(true);
    await eventually(`the agent's memory back near its level (${before.toFixed(0)} MiB before)`, async () => rssMiB(agent.pid) < before + 40, 30_000, 500);
  } finally {
    await f.stop(agent);
  }
});
