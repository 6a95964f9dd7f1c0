/**
 * Malformed desired states fed, one after another, to a running `agent run`: each must be
 * refused with an error naming the file and the line, nothing that runs may change, and the
 * agent must stay up. One case of each kind of mistake runs here (`agent: true` in the corpus);
 * every case of the corpus runs in-process through the loader (test/unit/bad-input.test.ts).
 * The valid state is restored between cases.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentState } from '../../agent/model/agent-state.js';
import { freePort } from '../harness/ports.js';
import { AgentFixture, eventually } from './support/agent-cli.js';
import { BAD_INPUTS } from './support/bad-inputs.js';

const AGAINST_THE_AGENT = BAD_INPUTS.filter((c) => c.agent);

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

/** The agent's own record, read from its state directory (no process started per poll). */
function recorded(): AgentState | undefined {
  try {
    return JSON.parse(readFileSync(join(f.stateDir, 'state.json'), 'utf8')) as AgentState;
  } catch {
    return undefined; // not written yet
  }
}

describe(`${AGAINST_THE_AGENT.length} malformed desired states against a running agent`, () => {
  it('has one case of each kind', () => {
    expect(AGAINST_THE_AGENT.length).toBeGreaterThanOrEqual(10);
  });

  it.each(AGAINST_THE_AGENT.map((c) => [c.name, c] as const))('%s: refused with file and line, nothing touched, agent up', async (_name, c) => {
    const content = typeof c.content === 'function' ? c.content(f) : c.content;
    f.writeDesired(content, c.file ?? 'stack.yaml');
    const s = await eventually(
      'the refusal',
      async () => {
        const st = recorded();
        return st?.invalid && st.source?.revision && st.invalid.revision === st.source.revision ? st : undefined;
      },
      30_000,
      50,
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
    await eventually('the valid state again', async () => recorded()?.invalid === undefined && recorded()?.lastReconcile?.result !== 'invalid', 30_000, 50);
  });

  it('the agent is up and what runs is untouched, as agent status tells', async () => {
    const s = await f.status();
    expect(s.invalid).toBeUndefined();
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(s.services[0]?.running).toMatchObject({ status: 'running' });
    expect(agent.output()).not.toMatch(/Reconcile failed unexpectedly|unhandled|FATAL/i);
  });
});
