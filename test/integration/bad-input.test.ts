/**
 * A corpus of malformed desired states fed, one after another, to a running `agent run`: each
 * must be refused with an error naming the file and the line, nothing that runs may change,
 * and the agent must stay up. The valid state is restored between cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { BAD_INPUTS } from './support/bad-inputs.js';

let f: AgentFixture;
let agent: ReturnType<AgentFixture['start']>;
let valid: string;
let before: { id: string; state: string }[];

beforeAll(async () => {
  f = await AgentFixture.create();
  valid = f.webYaml({ version: '1.0.0' });
  f.writeDesired(valid);
  agent = f.start('run', ['--interval', '1h', '--listen', `127.0.0.1:${await freePort()}`]);
  await eventually('the first deploy', async () => (await f.status()).services[0]?.lastTransaction?.result === 'succeeded', 60_000);
  before = (await f.containers()).map((c) => ({ id: c.id, state: c.state }));
}, 120_000);

afterAll(async () => {
  await f.stop(agent);
  await f.cleanup();
});

describe(`${BAD_INPUTS.length} malformed desired states`, () => {
  it('has at least 40 cases', () => {
    expect(BAD_INPUTS.length).toBeGreaterThanOrEqual(40);
  });

  it.each(BAD_INPUTS.map((c) => [c.name, c] as const))('%s: refused with file and line, nothing touched, agent up', async (_name, c) => {
    const content = typeof c.content === 'function' ? c.content(f) : c.content;
    f.writeDesired(content, c.file ?? 'stack.yaml');
    const s = await eventually(
      'the refusal',
      async () => {
        const st = await f.status();
        return st.invalid && st.source?.revision && st.invalid.revision === st.source.revision ? st : undefined;
      },
      30_000,
      150,
    );
    const errors = s.invalid!.issues.filter((i) => i.severity !== 'warning');
    expect(errors.length, JSON.stringify(s.invalid)).toBeGreaterThan(0);
    const first = errors[0]!;
    expect(first.file).toBe(c.file ?? 'stack.yaml');
    expect(first.line).toBeGreaterThan(0);
    expect(first.message.toLowerCase()).toContain(c.expect.toLowerCase());
    if (c.line) expect(first.line).toBe(c.line);
    expect((await f.containers()).map((x) => ({ id: x.id, state: x.state }))).toEqual(before);
    expect(await f.page()).toBe('1.0.0');
    expect(agent.output()).not.toMatch(/Reconcile failed unexpectedly|unhandled|FATAL/i);
    // Back to the valid state before the next case; a leftover file of another name goes too.
    if (c.file && c.file !== 'stack.yaml') (await import('node:fs')).rmSync(`${f.sourceDir}/${c.file}`);
    f.writeDesired(valid);
    await eventually('the valid state again', async () => !(await f.status()).invalid, 30_000, 150);
  });
});
