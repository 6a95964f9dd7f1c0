/**
 * `agent run`: the long-running loop reacts to a change of the desired-state directory,
 * repairs drift at its resync interval, keeps the state directory to itself, and stops
 * cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

let f: AgentFixture;
let agent: ChildProcess | undefined;
let logs = '';

beforeEach(async () => {
  f = await AgentFixture.create();
  logs = '';
});
afterEach(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  await f.cleanup();
});

function startAgent(): ChildProcess {
  const child = spawn(process.execPath, f.args('run', ['--interval', '2s', '--listen', '']), { env: { ...process.env, AGENT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  return child;
}

it('applies on start and on file changes, repairs drift, and exits 0 on SIGTERM', async () => {
  f.writeDesired(f.webYaml({ version: '1.0.0' }));
  agent = startAgent();
  await eventually('the first deploy', async () => (await f.page()) === '1.0.0', 60_000);

  // A second agent process is refused: one owner per state directory.
  const second = await f.run('apply');
  expect(second.code).toBe(EXIT.locked);
  expect(second.stderr).toContain('another agent process');

  // A change to the directory is picked up by the watcher.
  f.writeDesired(f.webYaml({ version: '1.1.0' }));
  await eventually('the update to 1.1.0', async () => (await f.page()) === '1.1.0', 60_000);
  // Serving is not done: wait for the transaction to pass its stabilisation window.
  await eventually('the 1.1.0 transaction to finish', async () => (await f.status()).services[0]?.lastTransaction?.to?.includes(':1.1.0@'), 30_000);

  // Drift: the container is stopped behind the agent's back; the periodic resync restarts it.
  const [c] = await f.containers();
  await f.h.docker.getContainer(c!.id).stop({ t: 1 });
  await eventually('the drift repair', async () => (await f.page()) === '1.1.0' && (await f.containers()).every((x) => x.state === 'running'), 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs.slice(-4000)}`);
  });

  // status reads the running agent's state without disturbing it.
  const s = await f.status();
  expect(s.agent.runningPid).toBe(agent.pid);
  expect(s.services[0]).toMatchObject({ inSync: true });

  agent.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => agent?.on('exit', (c2) => resolve(c2)));
  expect(code, logs).toBe(0);
  expect(logs).toContain('Agent stopped');
  // The lock is released: a one-shot apply works again.
  expect((await f.run('apply')).code).toBe(EXIT.ok);
});
