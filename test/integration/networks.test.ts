/**
 * The stack's own network on the real engine: services reach each other by service name through
 * Docker's embedded DNS, a port is published on 127.0.0.1 only, and an update moves the name to
 * the new container. The test engine's networks are link-local (its address pool), as the
 * network rule of the project asks.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

let f: AgentFixture;
beforeEach(async () => {
  f = await AgentFixture.create();
});
afterEach(async () => {
  await f.cleanup();
});

/** web, published on 127.0.0.1; client, which reaches web by its name only. */
function stack(webVersion: string, extra = ''): string {
  return `name: ${f.stack}
services:
  web:
    image: ${f.image(webVersion)}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8080"}
    ports: ["127.0.0.1:${f.port}:8080"]
    x-agent:
      health:
        timeout: 20s
        stabilization: 500ms
        probes: [{http: "http://127.0.0.1:${f.port}/", interval: 250ms}]
  client:
    image: ${f.image('1.0.0')}
    init: true
    depends_on: {web: {condition: service_healthy}}
    environment: {LISTEN: 0.0.0.0, PORT: "8081"}
    x-agent:
      health:
        timeout: 20s
        stabilization: 500ms
        probes: [{exec: [sh, -c, "wget -q -O /dev/null http://web:8080/"], interval: 250ms}]
${extra}`;
}

describe('the stack network', () => {
  it('services reach each other by name; an update moves the name to the new container', async () => {
    f.writeDesired(stack('1.0.0'));
    const first = await f.run('apply');
    expect(first.code, first.stdout + first.stderr).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');
    expect(await f.inService('wget -q -O- http://web:8080/', 'client')).toBe('1.0.0');

    const net = await f.h.docker.getNetwork(`${f.stack}_default`).inspect();
    expect(net.IPAM?.Config?.[0]?.Subnet).toMatch(/^169\.254\./);
    expect(net.Labels).toMatchObject({ 'io.gitops-agent.managed': 'true', 'io.gitops-agent.stack': f.stack });
    const web = await f.h.docker.getContainer(`${f.stack}-web-1`).inspect();
    expect(web.NetworkSettings.Networks[`${f.stack}_default`]?.Aliases).toEqual(expect.arrayContaining(['web']));
    expect(web.HostConfig.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(f.port) }] });

    f.writeDesired(stack('1.1.0'));
    const update = await f.run('apply');
    expect(update.code, update.stdout + update.stderr).toBe(EXIT.ok);
    await eventually('the client to reach the new web by name', async () => (await f.inService('wget -q -O- http://web:8080/', 'client')) === '1.1.0', 10_000, 100);

    const plan = await f.run('plan', ['--json']);
    expect(JSON.parse(plan.stdout)).toMatchObject({ changes: 0, networks: [{ name: `${f.stack}_default`, action: 'none', cause: 'in-sync' }] });
  });

  it('a crashing update of a service others reach by name is rolled back: the name goes back to the old one', async () => {
    f.writeDesired(stack('1.0.0'));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    f.writeDesired(stack('1.3.0'));
    expect((await f.run('apply')).code).toBe(EXIT.updateFailed);
    await eventually('the client to reach the old web by name', async () => (await f.inService('wget -q -O- http://web:8080/', 'client')) === '1.0.0', 10_000, 100);
  });

  it('a network no service joins any more is removed when pruning, and only then', async () => {
    const extraNet = `networks:\n  side: {}\n`;
    f.writeDesired(stack('1.0.0').replace('    init: true\n    depends_on', '    init: true\n    networks: [default, side]\n    depends_on') + extraNet);
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await f.h.docker.getNetwork(`${f.stack}_side`).inspect();
    f.writeDesired(stack('1.0.0'));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await f.h.docker.getNetwork(`${f.stack}_side`).inspect();
    expect((await f.run('apply', ['--prune'])).code).toBe(EXIT.ok);
    await expect(f.h.docker.getNetwork(`${f.stack}_side`).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('a first deploy of several services at once creates the stack network once (the engine does not stop duplicates)', async () => {
    const services = Array.from({ length: 6 }, (_, i) => `  s${i}:\n    image: ${f.image('1.0.0')}\n    init: true\n    environment: {LISTEN: 0.0.0.0, PORT: "8080"}\n    x-agent: {health: {timeout: 20s, stabilization: 0s, probes: [{exec: [sh, -c, "wget -q -O /dev/null http://127.0.0.1:8080/"], interval: 250ms}]}}`).join('\n');
    f.writeDesired(`name: ${f.stack}\nservices:\n${services}\n`);
    const r = await f.run('apply', [], { AGENT_CONCURRENCY: '6' });
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
    const named = (await f.h.docker.listNetworks()).filter((n) => n.Name === `${f.stack}_default`);
    expect(named).toHaveLength(1);
  });

  it("another service reaches a service by its hostname and its container_name, as by its name", async () => {
    f.writeDesired(stack('1.0.0').replace('    init: true\n    environment: {LISTEN: 0.0.0.0, PORT: "8080"}', `    init: true\n    hostname: frontdoor\n    container_name: ${f.stack}-edge\n    environment: {LISTEN: 0.0.0.0, PORT: "8080"}`));
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
    for (const name of ['web', 'frontdoor', `${f.stack}-edge`]) expect(await f.inService(`wget -q -O- http://${name}:8080/`, 'client')).toBe('1.0.0');
  });
});

