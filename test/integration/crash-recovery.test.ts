/**
 * The agent SIGKILLed at every journal step of a real update (a failpoint kills the process
 * right before or after the step), then started again: the service must end on exactly one
 * healthy version, never two running copies, and the status must say what happened. The
 * service has a volume backed up before each update and restored on rollback, so the backup
 * and restore steps are killed too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { FORWARD_PHASES, ROLLBACK_PHASES } from '../../agent/model/journal.js';
import { harness } from '../harness/provided.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

const GOOD = ['1.0.0', '1.1.0', '1.2.0'] as const;

const FAMILIES = [
  {
    family: 'good update',
    points: FORWARD_PHASES.flatMap((p) => [`before:${p}`, `after:${p}`]),
    failing: false,
  },
  {
    family: 'failing update (crash at start) being rolled back',
    // rollback-restore-db needs a database dump of another service: the unit tests cover it.
    points: ['before:health-gate', 'after:health-gate', ...ROLLBACK_PHASES.filter((p) => p !== 'rollback-restore-db').flatMap((p) => [`before:${p}`, `after:${p}`])],
    failing: true,
  },
];

// Both backup formats: the volume goes to a restic repository, or to a tar.gz archive.
describe.each((['restic', 'archive'] as const).flatMap((format) => FAMILIES.map((x) => ({ ...x, format }))))('SIGKILL during a $family ($format)', ({ points, failing, format }) => {
  let f: AgentFixture;
  let current: string = GOOD[0];
  let attempt = 0;

  beforeAll(async () => {
    f = await AgentFixture.create();
    if (format === 'restic') f.gitEnv.AGENT_BACKUP_RESTIC_IMAGE = harness().resticImage.pinned;
    f.writeDesired(f.webYaml({ version: current, backup: { restoreOnRollback: true } }));
    const r = await f.run('apply');
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(await f.inService('echo kept > /data/marker && cat /data/marker')).toBe('kept');
  });

  afterAll(async () => {
    await f.cleanup();
  });

  it.each(points)('killed at %s, then restarted', async (point) => {
    attempt++;
    const target = failing ? '1.3.0' : (GOOD.find((v) => v !== current) as string);
    // A fresh variable per attempt makes every failing target a new spec: a held one is never retried.
    f.writeDesired(f.webYaml({ version: target, env: { ATTEMPT: String(attempt) }, backup: { restoreOnRollback: true } }));

    const killed = await f.run('apply', [], { AGENT_FAILPOINTS: point });
    expect(killed.signal, `expected the failpoint ${point} to kill the agent; stdout: ${killed.stdout}\nstderr: ${killed.stderr}`).toBe('SIGKILL');
    const whileDead = await f.containers();
    expect(whileDead.filter((c) => c.state === 'running').length).toBeLessThanOrEqual(1);

    const recovered = await f.run('apply');
    expect(recovered.code, recovered.stdout + recovered.stderr).toBe(failing ? EXIT.updateFailed : EXIT.ok);
    const expected = failing ? current : target;
    const containers = await f.containers();
    expect(containers.map((c) => [c.name, c.state])).toEqual([[`${f.stack}-web-1`, 'running']]);
    expect(await f.page()).toBe(expected);

    // The volume's data survived the crash and the backup and restore steps.
    expect(await f.inService('cat /data/marker')).toBe('kept');
    const s = await f.status();
    expect(s.interruptedTransactions).toEqual([]);
    const svc = s.services[0];
    // Docker's own verdict comes with its next check, after the agent's gate ran the same command.
    await eventually('Docker to report the container healthy', async () => (await f.status()).services[0]?.running?.health === 'healthy', 15_000, 100);
    expect(svc?.lastTransaction?.result).toBe(failing ? 'rolled-back' : 'succeeded');
    // What happened is in the history: the interrupted transaction, finished or dropped on restart.
    const recent = s.recentTransactions.slice(-2);
    expect(recent.some((t) => t.recovered === true || t.result === 'interrupted'), JSON.stringify(recent)).toBe(true);
    current = expected;
  });
});
