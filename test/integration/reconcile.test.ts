/**
 * Every path of the update transaction, end to end: the real CLI, the run's private engine,
 * images pulled from the local registry, health gates against real containers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { EXIT } from '../../agent/cli/exit-codes.js';

let f: AgentFixture;
beforeEach(async () => {
  f = await AgentFixture.create();
});
afterEach(async () => {
  await f.cleanup();
});

async function deploy(version = '1.0.0'): Promise<void> {
  f.writeDesired(f.webYaml({ version }));
  const r = await f.run('apply');
  expect(r.code, r.stderr).toBe(EXIT.ok);
  expect(await f.page()).toBe(version);
}

describe('agent apply', () => {
  it('first deploy: pulls from the registry, starts, passes the gate, and status says so', async () => {
    f.writeDesired(f.webYaml({ version: '1.0.0' }));
    const plan = await f.run('plan', ['--json']);
    expect(plan.code).toBe(EXIT.ok);
    expect(JSON.parse(plan.stdout).steps).toMatchObject([{ service: 'web', action: 'create', reasons: ['new service'] }]);

    const r = await f.run('apply');
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toContain('succeeded');
    expect(await f.page()).toBe('1.0.0');
    expect((await f.containers()).map((c) => [c.name, c.state])).toEqual([[`${f.stack}-web-1`, 'running']]);

    const s = await f.status();
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(s.services).toMatchObject([{ name: 'web', inSync: true, running: { status: 'running' }, lastTransaction: { result: 'succeeded', kind: 'create' } }]);
    // Docker's own verdict comes with its next check, after the agent's gate ran the same command.
    await eventually('Docker to report the container healthy', async () => (await f.status()).services[0]?.running?.health === 'healthy', 15_000, 100);
    expect(s.source?.revision).toMatch(/^dir:[0-9a-f]{12}$/);

    const again = await f.run('apply');
    expect(again.code).toBe(EXIT.ok);
    expect(again.stdout).toContain('no-op');
  });

  it('update: the new version replaces the old one, which is removed', async () => {
    await deploy('1.0.0');
    const before = await f.containers();
    f.writeDesired(f.webYaml({ version: '1.1.0' }));
    const plan = await f.run('plan');
    expect(plan.stdout).toContain('image 1.0.0 -> 1.1.0');
    const r = await f.run('apply');
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.1.0');
    const after = await f.containers();
    expect(after).toHaveLength(1);
    expect(after[0]?.id).not.toBe(before[0]?.id);
    const s = await f.status();
    expect(s.services[0]).toMatchObject({ inSync: true, lastTransaction: { result: 'succeeded', kind: 'update' } });
    expect(s.services[0]?.lastTransaction?.from).toContain(':1.0.0@');
    expect(s.services[0]?.lastTransaction?.to).toContain(':1.1.0@');
    // The next update's plan says how long this one kept the service down (stop-first).
    expect(s.services[0]?.lastTransaction?.downtimeMs).toBeGreaterThan(0);
    f.writeDesired(f.webYaml({ version: '1.2.0' }));
    expect((await f.run('plan')).stdout).toMatch(/stop-first: the old container stops before the new one starts; the last update \(.*Z\) kept web down \d+\.\d s/);
  });

  it('update to a tag that does not exist: nothing changes, the failure is reported and held', async () => {
    await deploy('1.0.0');
    const before = await f.containers();
    f.writeDesired(f.webYaml({ version: '9.9.9', unpinned: true }));
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    expect(r.stdout).toMatch(/failed: pull: image .*9\.9\.9 not found/);
    expect(await f.containers()).toEqual(before);
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.services[0]).toMatchObject({ held: { image: expect.stringContaining('9.9.9') }, lastTransaction: { result: 'failed', code: 'IMAGE_NOT_FOUND' } });
    expect(s.conditions.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'UpdateFailed' });
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });

    // Not retried until the desired state changes; and while it is held, apply says so in its
    // exit code (a cron job must learn the host does not run what Git says).
    const again = await f.run('apply');
    expect(again.code).toBe(EXIT.updateFailed);
    expect(again.stderr).toMatch(/not as desired: web is held \(.*9\.9\.9 failed/);
    expect(again.stderr).not.toContain('Transaction did not succeed');
    expect((await f.status()).services[0]?.lastTransaction?.txId).toBe(s.services[0]?.lastTransaction?.txId);
  });

  it('crash at start: rolled back to the old container, reported as failed with the output', async () => {
    await deploy('1.0.0');
    const oldId = (await f.containers())[0]?.id;
    f.writeDesired(f.webYaml({ version: '1.3.0' }));
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    expect(await f.page()).toBe('1.0.0');
    const cs = await f.containers();
    expect(cs.map((c) => [c.id, c.name, c.state])).toEqual([[oldId, `${f.stack}-web-1`, 'running']]);
    const s = await f.status();
    const t = s.services[0]?.lastTransaction;
    expect(t?.result).toBe('rolled-back');
    expect(t?.reason).toMatch(/^rolled back: container exited with code 3/);
    expect(t?.reason).toContain('fatal: config invalid');
    expect(s.services[0]?.held?.image).toContain('1.3.0');
  });

  it('never healthy: rolled back with the health check output', async () => {
    await deploy('1.0.0');
    f.writeDesired(f.webYaml({ version: '1.4.0', timeout: '15s' }));
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    expect(await f.page()).toBe('1.0.0');
    const t = (await f.status()).services[0]?.lastTransaction;
    expect(t?.result).toBe('rolled-back');
    expect(t?.reason).toMatch(/Docker health check reports unhealthy|not healthy after/);
  });

  it('an agent-side probe that fails: rolled back naming the probe', async () => {
    await deploy('1.6.0');
    f.writeDesired(f.webYaml({ version: '1.2.0', timeout: '4s', probes: [`- http: {url: "http://127.0.0.1:${f.port}/missing", status: 200}\n            interval: 250ms`] }));
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    const t = (await f.status()).services[0]?.lastTransaction;
    expect(t?.reason).toContain(`probe http http://127.0.0.1:${f.port}/missing: got 404`);
    expect(await f.page()).toBe('1.6.0');
  });

  it('slow but within the deadline: succeeds', async () => {
    await deploy('1.0.0');
    f.writeDesired(f.webYaml({ version: '1.5.0', timeout: '30s', env: { SLOW_SECONDS: '3' } }));
    const started = Date.now();
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
    expect(Date.now() - started).toBeGreaterThan(3000);
    expect(await f.page()).toBe('1.5.0');
  });

  it('drift repaired: a stopped and then a removed container are brought back', async () => {
    await deploy('1.0.0');
    const [c] = await f.containers();
    await f.h.docker.getContainer(c!.id).stop({ t: 1 });
    // status follows what it sees, before any pass: the service is not running.
    const stopped = await f.status();
    expect(stopped.conditions.find((x) => x.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'ServiceNotRunning' });
    expect(stopped.conditions.find((x) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ServiceNotRunning' });
    const plan = await f.run('plan');
    expect(plan.stdout).toMatch(/update\s.*container exited/);
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');

    const [c2] = await f.containers();
    await f.h.docker.getContainer(c2!.id).remove({ force: true });
    expect((await f.status()).conditions.find((x) => x.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'ServiceNotRunning' });
    const plan2 = await f.run('plan');
    expect(plan2.stdout).toContain('container missing (removed outside the agent)');
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');
    expect(await f.containers()).toHaveLength(1);
  });

  it('invalid desired state: nothing applied, error with file and line, service untouched', async () => {
    await deploy('1.0.0');
    const before = await f.containers();
    f.writeDesired(`${f.webYaml({ version: '1.1.0' })}\n    bogus_key: 1\n`);
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.invalidDesiredState);
    expect(r.stdout).toMatch(/stack\.yaml:\d+:\d+: \/services\/web\/bogus_key: unknown key "bogus_key"/);
    expect(await f.containers()).toEqual(before);
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.invalid?.issues[0]).toMatchObject({ file: 'stack.yaml', pointer: '/services/web/bogus_key' });
    expect(s.conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'ValidationFailed' });
    const text = await f.run('status');
    expect(text.stdout).toContain('INVALID');

    const v = await f.run('validate');
    expect(v.code).toBe(EXIT.invalidDesiredState);
  });

  it('never touches containers without its labels', async () => {
    await deploy('1.0.0');
    const foreign = await f.h.docker.createContainer({ name: `${f.stack}-foreign`, Image: f.image('1.0.0'), Cmd: ['sleep', '60'], HostConfig: { NetworkMode: 'host' } });
    try {
      f.writeDesired(f.webYaml({ version: '1.1.0' }).replace('x-agent:', 'x-agent:') + '\nx-agent:\n  prune: true\n');
      expect((await f.run('apply')).code).toBe(EXIT.ok);
      const info = await foreign.inspect();
      expect(info.State.Status).toBe('created');
    } finally {
      await foreign.remove({ force: true });
    }
  });

  it('prune: a service removed from the desired state is removed only when pruning is on', async () => {
    await deploy('1.0.0');
    f.writeDesired(`name: ${f.stack}\nservices: {}\n`);
    const kept = await f.run('apply');
    expect(kept.code).toBe(EXIT.ok);
    expect(await f.containers()).toHaveLength(1);
    expect((await f.run('plan')).stdout).toContain('kept because pruning is disabled');
    const pruned = await f.run('apply', ['--prune']);
    expect(pruned.code, pruned.stderr).toBe(EXIT.ok);
    expect(await f.containers()).toHaveLength(0);
  });

  it('secrets from the env file reach the container but never the output', async () => {
    const { writeFileSync } = await import('node:fs');
    const envFile = `${f.root}/secrets.env`;
    writeFileSync(envFile, 'APP_TOKEN=tok-7f3a9c-very-secret\n');
    f.writeDesired(f.webYaml({ version: '1.0.0', env: { TOKEN: '${APP_TOKEN}' } }));
    const r = await f.run('apply', ['--env-file', envFile]);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const [c] = await f.containers();
    const info = await f.h.docker.getContainer(c!.id).inspect();
    expect(info.Config.Env).toContain('TOKEN=tok-7f3a9c-very-secret');
    f.writeDesired(f.webYaml({ version: '1.1.0', env: { TOKEN: '${APP_TOKEN}' } }));
    const outputs = [r, await f.run('plan', ['--json', '--env-file', envFile]), await f.run('apply', ['--env-file', envFile]), await f.run('status', ['--json', '--env-file', envFile])];
    for (const o of outputs) expect(o.stdout + o.stderr).not.toContain('tok-7f3a9c');
  });
});
