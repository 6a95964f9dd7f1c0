/**
 * The keyed spec hash and an upgrade: a container an earlier agent labelled with the plain
 * SHA-256 of its spec is recognised, so the upgrade recreates nothing. The earlier agent's
 * container is made here through the engine API: the agent's container, recreated with the
 * plain hash in its label.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { LABELS } from '../../agent/core/labels.js';
import { hashSpec, loadDesiredState } from '../../agent/desired/load.js';
import type { Revision } from '../../agent/core/ids.js';
import { AgentFixture } from './support/agent-cli.js';

let f: AgentFixture;

beforeEach(async () => {
  f = await AgentFixture.create();
});
afterEach(async () => {
  await f.cleanup();
});

/** The running container of the stack, recreated with `label` as its spec hash (as an earlier agent wrote it). */
async function relabel(label: string): Promise<string> {
  const [c] = await f.containers();
  const old = f.h.docker.getContainer(c!.id);
  const info = await old.inspect();
  await old.remove({ force: true });
  const created = await f.h.docker.createContainer({
    name: info.Name.replace(/^\//, ''),
    Image: info.Config.Image,
    Env: info.Config.Env,
    Cmd: info.Config.Cmd,
    Labels: { ...info.Config.Labels, [LABELS.specHash]: label },
    HostConfig: info.HostConfig,
  });
  await created.start();
  return created.id;
}

describe('an upgrade to the keyed spec hash', () => {
  it('recognises the plain hash an earlier agent wrote: nothing is recreated; a different spec still is', async () => {
    const yaml = f.webYaml({ version: '1.0.0' });
    f.writeDesired(yaml);
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const [keyed] = await f.containers();
    expect((await f.h.docker.getContainer(keyed!.id).inspect()).Config.Labels[LABELS.specHash]).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);

    const loaded = loadDesiredState({ files: [{ path: 'stack.yaml', content: yaml }], revision: 'dir:x' as Revision, env: {}, defaultStack: 'default' });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
    const plain = hashSpec(loaded.state.services.web!.spec);
    const legacy = await relabel(plain);
    const plan = await f.run('plan');
    expect(plan.stdout, plan.stdout).toContain('no changes');
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect((await f.containers()).map((c) => c.id)).toEqual([legacy]);
    expect((await f.status()).services[0]?.inSync).toBe(true);

    // A plain hash of another spec is not taken for this one.
    await relabel(plain.replace(/^./, (ch) => (ch === '0' ? '1' : '0')));
    expect((await f.run('plan')).stdout).toMatch(/1 change/);
  });
});
