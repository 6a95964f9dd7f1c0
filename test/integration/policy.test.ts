/**
 * The operator's policy against the real agent and engine: a commit asking for the host is
 * refused by validate, plan, apply and run, with file:line and Stalled/PolicyDenied, and nothing
 * that runs changes. The suite's permissive policy (test-policy-setup.ts) is replaced here by
 * the defaults, or by an operator's own file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { EXIT } from '../../agent/cli/exit-codes.js';

let f: AgentFixture;
let policy: Record<string, string>;

beforeEach(async () => {
  f = await AgentFixture.create();
  // The operator allows the host network the fixture listens on (127.0.0.1), nothing more.
  const file = join(f.root, 'policy.yaml');
  writeFileSync(file, 'networkModes: [bridge, none, service, host]\n');
  policy = { AGENT_POLICY_FILE: file };
});
afterEach(async () => {
  await f.cleanup();
});

describe('the operator policy', () => {
  it('a fresh install (the default policy) refuses the host network, located, and creates nothing', async () => {
    f.writeDesired(f.webYaml({ version: '1.0.0' }));
    const fresh = { AGENT_POLICY_FILE: '' };
    const v = await f.run('validate', [], fresh);
    expect(v.code).toBe(EXIT.invalidDesiredState);
    expect(v.stdout).toMatch(/stack\.yaml:5:\d+: \/services\/web\/network_mode: denied by the operator's policy \(networkModes, the default policy\)/);
    const a = await f.run('apply', [], fresh);
    expect(a.code).toBe(EXIT.invalidDesiredState);
    expect(await f.containers()).toEqual([]);
    expect((await f.run('validate', [], policy)).code).toBe(EXIT.ok);
  });

  it('a commit asking for the host is refused by plan, apply and run; what runs is untouched; the policy can allow it', async () => {
    f.writeDesired(f.webYaml({ version: '1.0.0' }));
    expect((await f.run('apply', [], policy)).code).toBe(EXIT.ok);
    const before = await f.containers();
    expect(await f.page()).toBe('1.0.0');

    // Whoever pushed it: the root of the host and the Docker socket, privileged.
    f.writeDesired(f.webYaml({ version: '1.1.0', extra: '    privileged: true\n    volumes: ["/:/host", "/var/run/docker.sock:/var/run/docker.sock"]' }));
    const plan = await f.run('plan', [], policy);
    expect(plan.code).toBe(EXIT.invalidDesiredState);
    const apply = await f.run('apply', [], policy);
    expect(apply.code).toBe(EXIT.invalidDesiredState);
    expect(apply.stdout).toMatch(/stack\.yaml:\d+:\d+: \/services\/web\/privileged: denied by the operator's policy \(allowPrivileged, .*policy\.yaml\)/);
    expect(apply.stdout).toMatch(/\/services\/web\/volumes\/0: denied by the operator's policy \(binds, .*\): binds the host path \//);
    expect(apply.stdout).toMatch(/\/services\/web\/volumes\/1: denied .*\/var\/run\/docker\.sock/);
    expect(await f.containers()).toEqual(before);
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'PolicyDenied' });
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PolicyDenied' });

    // `agent run` refuses it on every pass, and keeps serving the running version.
    const agent = f.start('run', ['--interval', '1s', '--listen', ''], policy);
    try {
      await eventually('a pass refusing the commit', async () => /denied by the operator's policy/.test(agent.output()));
      expect(await f.containers()).toEqual(before);
    } finally {
      await f.stop(agent);
    }

    // The operator allows privileged mode and binds of /srv; / and the socket stay refused.
    const wider = join(f.root, 'wider.yaml');
    writeFileSync(wider, 'networkModes: [bridge, none, service, host]\nallowPrivileged: true\nbinds: [/srv]\n');
    const again = await f.run('apply', [], { AGENT_POLICY_FILE: wider });
    expect(again.code).toBe(EXIT.invalidDesiredState);
    expect(again.stdout).not.toMatch(/allowPrivileged/);
    expect(again.stdout).toMatch(/binds the host path \/, which is not under an allowed path \(\/srv\)/);
    expect(await f.page()).toBe('1.0.0');
  });

  it('a pinned digest that is another build than its tag is refused by validate and plan (the local registry asked), unless digest-only pins are allowed', async () => {
    const good = f.image('1.0.0');
    const older = f.image('1.1.0');
    const mismatched = `${good.split('@')[0]}@${older.split('@')[1]}`;
    const check = { ...policy, AGENT_CHECK_TAGS: 'true' };
    f.writeDesired(f.webYaml({ version: '1.0.0' }));
    const ok = await f.run('validate', [], check);
    expect(ok.code, ok.stdout + ok.stderr).toBe(EXIT.ok);
    expect(ok.stdout).not.toMatch(/at the registry/);

    f.writeDesired(f.webYaml({ version: '1.0.0' }).replace(good, mismatched));
    const v = await f.run('validate', [], check);
    expect(v.code).toBe(EXIT.invalidDesiredState);
    expect(v.stdout).toMatch(new RegExp(`stack\\.yaml:4:\\d+: /services/web/image: the tag 1\\.0\\.0 of \\S+fixture/web is sha256:${good.split('@sha256:')[1]!.slice(0, 12)} at the registry, not the pinned sha256:${older.split('@sha256:')[1]!.slice(0, 12)}`));
    const plan = await f.run('plan', [], check);
    expect(plan.code).toBe(EXIT.invalidDesiredState);
    expect(plan.stdout).toMatch(/is another build than its tag says/);

    const lenient = join(f.root, 'lenient.yaml');
    writeFileSync(lenient, 'networkModes: [bridge, none, service, host]\nallowDigestOnlyPins: true\n');
    const allowed = await f.run('validate', [], { AGENT_POLICY_FILE: lenient, AGENT_CHECK_TAGS: 'true' });
    expect(allowed.code).toBe(EXIT.ok);
    expect(allowed.stdout).toMatch(/\(warning\).*allowed: policy\.allowDigestOnlyPins/);
  });
});
