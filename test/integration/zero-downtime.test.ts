/**
 * Updates without downtime on the real engine, behind a real nginx that resolves the app's
 * name through Docker's DNS at request time, with requests every 10 ms through nginx: the app
 * updated start-first, a failing version rolled back, the agent SIGKILLed at each start-first
 * step and started again; nginx's configuration changed in place with a reload, and a broken
 * one undone. Not one request may fail. nginx's own image update stays stop-first, measured.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { RESOLVING_NGINX_CONF, ensureNginxImage } from '../harness/nginx.js';
import type { PostgresImage } from '../harness/postgres.js';
import { startTraffic, type TrafficReport } from '../harness/traffic.js';
import { AgentFixture, eventually, type CliResult } from './support/agent-cli.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let f: AgentFixture;
let nginx: PostgresImage;

function stack(version: string, order: 'start-first' | 'stop-first' = 'start-first', nginxImage = nginx.pinned): string {
  return `name: ${f.stack}
services:
  app:
    image: ${f.image(version)}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8080"}
    stop_grace_period: 2s
    deploy:
      update_config: {order: ${order}, monitor: 1s}
    x-agent:
      policy: auto
${order === 'start-first' ? '      drain: 2s\n' : ''}      health: {timeout: 20s}
  nginx:
    image: ${nginxImage}
    ports: ["127.0.0.1:${f.port}:80"]
    volumes: ["./nginx:/etc/nginx/conf.d:ro"]
    depends_on: [app]
    x-agent:
      policy: auto
      reload: {command: [nginx, -s, reload]}
      health: {timeout: 15s, stabilization: 1s, probes: [{http: "http://127.0.0.1:${f.port}/", interval: 250ms}]}
`;
}

async function during(action: () => Promise<void>): Promise<TrafficReport> {
  const traffic = startTraffic(`http://127.0.0.1:${f.port}/`, 10);
  try {
    await action();
  } finally {
    // Requests go on a little after the agent is done: the old container's address may still be cached.
    await new Promise((r) => setTimeout(r, 1500));
  }
  return traffic.stop();
}

/** `agent apply` with traffic through nginx: its exit code and output, and what the traffic saw. */
async function applyDuring(): Promise<{ code: number | null; out: string; t: TrafficReport }> {
  let r: CliResult | undefined;
  const t = await during(async () => {
    r = await f.run('apply');
  });
  return { code: r!.code, out: r!.stdout + r!.stderr, t };
}

async function appContainers(): Promise<{ name: string; state: string; image: string }[]> {
  return (await f.containers()).filter((c) => c.name.includes('-app-') || c.name.includes('app.prev'));
}

beforeAll(async () => {
  f = await AgentFixture.create();
  nginx = await ensureNginxImage(f.h, { host: f.h.registryHost });
  mkdirSync(join(f.sourceDir, 'nginx'), { recursive: true });
  writeFileSync(join(f.sourceDir, 'nginx', 'site.conf'), RESOLVING_NGINX_CONF('http://app:8080'));
  f.writeDesired(stack('1.0.0'));
  const r = await f.run('apply');
  expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
  await eventually('nginx to serve the app', async () => (await f.page()) === '1.0.0');
});

afterAll(async () => {
  await f?.cleanup();
});

describe('start-first behind nginx', () => {
  it('an update: the new version takes over with no failed request', async () => {
    f.writeDesired(stack('1.1.0'));
    const plan = await f.run('plan');
    expect(plan.stdout).toMatch(/start-first: the new container starts beside the old one/);
    const { code, out, t } = await applyDuring();
    expect(code, out).toBe(EXIT.ok);
    expect(t.failed, JSON.stringify(t)).toBe(0);
    expect(t.requests).toBeGreaterThan(100);
    expect(Object.keys(t.bodies).sort()).toEqual(['1.0.0', '1.1.0']);
    expect(await f.page()).toBe('1.1.0');
    expect((await appContainers()).map((c) => c.state)).toEqual(['running']);
    const s = await f.status();
    const app = s.services.find((x) => x.name === 'app');
    expect(app?.lastTransaction?.result).toBe('succeeded');
    expect(app?.lastTransaction?.downtimeMs).toBeUndefined();
  });

  it('a failing version (unhealthy): removed, the old one served throughout', async () => {
    f.writeDesired(stack('1.4.0'));
    const { code, out, t } = await applyDuring();
    expect(code, out).toBe(EXIT.updateFailed);
    expect(t.failed, JSON.stringify(t)).toBe(0);
    expect(Object.keys(t.bodies)).toEqual(['1.1.0']);
    expect((await appContainers()).map((c) => [c.state, c.image])).toEqual([['running', f.image('1.1.0')]]);
    const s = await f.status();
    expect(s.services.find((x) => x.name === 'app')?.lastTransaction?.result).toBe('rolled-back');
  });

  it.each(['after:health-gate', 'before:switch', 'after:switch', 'before:drain', 'after:drain', 'before:retire-old', 'after:retire-old', 'before:remove-old'])('SIGKILL at %s, then restarted: one version left, no failed request', async (point) => {
    const current = (await f.page()).trim();
    const next = current === '1.1.0' ? '1.2.0' : '1.1.0';
    f.writeDesired(stack(next));
    const t = await during(async () => {
      const killed = await f.run('apply', [], { AGENT_FAILPOINTS: point });
      expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
      const recovered = await f.run('apply');
      expect(recovered.code, recovered.stdout + recovered.stderr).toBe(EXIT.ok);
    });
    expect(t.failed, JSON.stringify(t)).toBe(0);
    expect((await appContainers()).map((c) => [c.state, c.image])).toEqual([['running', f.image(next)]]);
    expect(await f.page()).toBe(next);
    expect((await f.status()).interruptedTransactions).toEqual([]);
  });
});

const siteConf = (header?: string) => RESOLVING_NGINX_CONF('http://app:8080').replace('location / {', `location / {${header ? `\n        add_header X-Site ${header};` : ''}`);
const header = async () => (await fetch(`http://127.0.0.1:${f.port}/`, { signal: AbortSignal.timeout(2000) })).headers.get('x-site');
const nginxId = async () => (await f.containers()).find((c) => c.name === `${f.stack}-nginx-1`)?.id;

describe("nginx's configuration, reloaded in place", () => {
  it('a new header: the files swapped, nginx reloaded, the same container, no failed request', async () => {
    const before = await nginxId();
    writeFileSync(join(f.sourceDir, 'nginx', 'site.conf'), siteConf('one'));
    const plan = await f.run('plan');
    expect(plan.stdout).toMatch(/reload in place: only the repository folders bound at \/etc\/nginx\/conf.d changed/);
    const { code, out, t } = await applyDuring();
    expect(code, out).toBe(EXIT.ok);
    expect(t.failed, JSON.stringify(t)).toBe(0);
    expect(await header()).toBe('one');
    expect(await nginxId()).toBe(before);
    const s = await f.status();
    const n = s.services.find((x) => x.name === 'nginx');
    expect(n?.lastTransaction).toMatchObject({ result: 'succeeded', reloaded: true });
    expect(n?.inSync).toBe(true);
    const again = await f.run('apply');
    expect(again.code).toBe(EXIT.ok);
    expect(again.stdout).toContain('no-op');
  });

  it('a configuration nginx refuses: the previous files back and reloaded, no failed request', async () => {
    const before = await nginxId();
    writeFileSync(join(f.sourceDir, 'nginx', 'site.conf'), siteConf('two').replace('listen 80;', 'lissten 80;'));
    const { code, out, t } = await applyDuring();
    expect(code, out).toBe(EXIT.updateFailed);
    expect(t.failed, JSON.stringify(t)).toBe(0);
    expect(await header()).toBe('one');
    expect(await nginxId()).toBe(before);
    const n = (await f.status()).services.find((x) => x.name === 'nginx');
    expect(n?.lastTransaction).toMatchObject({ result: 'rolled-back', code: 'RELOAD_FAILED', reloaded: true });
    expect(n?.lastTransaction?.reason).toMatch(/unknown directive "lissten"/);
    // Fixed in the repository: reloaded again.
    writeFileSync(join(f.sourceDir, 'nginx', 'site.conf'), siteConf('three'));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await header()).toBe('three');
  });

  it("nginx's own image update stays stop-first: its downtime is measured and planned with the next one", async () => {
    const next = await ensureNginxImage(f.h, { host: f.h.registryHost }, '1.22.2');
    const app = (await f.page()).trim();
    f.writeDesired(stack(app, 'start-first', next.pinned));
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
    const n = (await f.status()).services.find((x) => x.name === 'nginx');
    expect(n?.lastTransaction?.downtimeMs).toBeGreaterThan(0);
    expect(n?.lastTransaction?.reloaded).toBeUndefined();
    f.writeDesired(stack(app, 'start-first'));
    const plan = await f.run('plan');
    expect(plan.stdout).toMatch(/stop-first: the old container stops before the new one starts; the last update \(.*\) kept nginx down \d+\.\d s/);
  });
});
