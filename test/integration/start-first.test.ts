/**
 * Start-first updates on the real engine, behind a real nginx that resolves the app's name
 * through Docker's DNS at request time: requests every 10 ms through nginx while the agent
 * updates the app, rolls a failing version back, and is SIGKILLed at each start-first step and
 * started again. Not one request may fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { RESOLVING_NGINX_CONF, ensureNginxImage } from '../harness/nginx.js';
import type { PostgresImage } from '../harness/postgres.js';
import { startTraffic, type TrafficReport } from '../harness/traffic.js';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let f: AgentFixture;
let nginx: PostgresImage;

function stack(version: string, order: 'start-first' | 'stop-first' = 'start-first'): string {
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
    image: ${nginx.pinned}
    ports: ["127.0.0.1:${f.port}:80"]
    volumes: ["./nginx:/etc/nginx/conf.d:ro"]
    depends_on: [app]
    x-agent:
      policy: auto
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
    let code: number | null = null;
    const t = await during(async () => {
      const r = await f.run('apply');
      code = r.code;
    });
    expect(code).toBe(EXIT.ok);
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
    let code: number | null = null;
    const t = await during(async () => {
      code = (await f.run('apply')).code;
    });
    expect(code).toBe(EXIT.updateFailed);
    expect(t.failed, JSON.stringify(t)).toBe(0);
    expect(Object.keys(t.bodies)).toEqual(['1.1.0']);
    expect((await appContainers()).map((c) => [c.state, c.image])).toEqual([['running', f.image('1.1.0')]]);
    const s = await f.status();
    expect(s.services.find((x) => x.name === 'app')?.lastTransaction?.result).toBe('rolled-back');
  });

  it.each(['after:health-gate', 'after:switch', 'before:retire-old', 'after:retire-old'])('SIGKILL at %s, then restarted: one version left, no failed request', async (point) => {
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
