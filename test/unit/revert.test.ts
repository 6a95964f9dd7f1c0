import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { asRevision } from '../../agent/core/ids.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { RevertRequest } from '../../agent/model/revert.js';
import { serviceBlock } from '../../agent/revert/edit.js';
import { findOwnRevert, revertFailedUpdate, type RevertDeps } from '../../agent/revert/revert.js';
import { fakeClock } from './fakes/clock.js';
import { FakeGit, ProcessDied } from './fakes/fake-git.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const stack = (tag: string, d: string) => `name: demo\nservices:\n  web:\n    image: reg:5000/web:${tag}@${D(d)}\n    network_mode: host\n    x-agent: {policy: auto}\n`;
const RENOVATE = '{\n  "packageRules": []\n}\n';

function setup() {
  const git = new FakeGit({ 'desired-state/stack.yaml': stack('1.0.0', 'a'), 'renovate.json': RENOVATE });
  const good = git.tip;
  const bad = git.serverCommit({ 'desired-state/stack.yaml': stack('1.1.0', 'b') }, 'Update web to 1.1.0');
  const loaded = loadDesiredState({ files: [{ path: 'desired-state/stack.yaml', content: stack('1.1.0', 'b') }], revision: asRevision(bad), env: {}, defaultStack: 'demo' });
  if (!loaded.ok) throw new Error('fixture invalid');
  const req: RevertRequest = { service: 'web', failedHash: loaded.state.services.web?.hash ?? '', failedImage: `reg:5000/web:1.1.0@${D('b')}`, failedRevision: bad, goodImage: `reg:5000/web:1.0.0@${D('a')}`, goodRevision: good, reason: 'rolled back: container exited with code 3', at: '2026-12-01T10:00:00.000Z' };
  const deps: RevertDeps = { repo: git, path: 'desired-state', renovateConfigPath: 'renovate.json', identity: { name: 'gitops-agent', email: 'agent@host' }, maxAttempts: 3, host: 'host-1', env: {}, defaultStack: 'demo', roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' }, clock: fakeClock(), log: pino({ level: 'silent' }) };
  return { git, good, bad, req, deps };
}

describe('the revert commit, against a Git port that injects faults', () => {
  it('puts the service back and quarantines the failed version', async () => {
    const { git, bad, req, deps } = setup();
    const r = await revertFailedUpdate(deps, req);
    expect(r).toMatchObject({ status: 'pushed', reverts: bad, quarantined: '1.1.0' });
    expect(serviceBlock(git.fileAt(git.tip, 'desired-state/stack.yaml') ?? '', 'web')).toEqual(serviceBlock(stack('1.0.0', 'a'), 'web'));
    expect(git.fileAt(git.tip, 'renovate.json')).toContain('gitops-agent quarantine:');
    expect(git.pushes).toHaveLength(1);
  });

  it('a non-fast-forward push (someone pushed meanwhile) is rebuilt on the new tip, keeping their commit', async () => {
    const { git, req, deps } = setup();
    git.failNextPush({ kind: 'raced', files: { 'README.md': 'edited meanwhile\n' }, message: 'Edit the README' });
    const r = await revertFailedUpdate(deps, req);
    expect(r.status).toBe('pushed');
    expect(git.fileAt(git.tip, 'README.md')).toBe('edited meanwhile\n');
    expect(serviceBlock(git.fileAt(git.tip, 'desired-state/stack.yaml') ?? '', 'web')).toEqual(serviceBlock(stack('1.0.0', 'a'), 'web'));
    expect(git.pushes).toHaveLength(1);
  });

  it('an unverified commit pushed on top while the update failed: no revert is built (or signed) on it', async () => {
    const { git, req, deps } = setup();
    const sneaked = git.serverCommit({ 'README.md': 'unsigned\n' }, 'Pushed by someone who cannot sign');
    const r = await revertFailedUpdate({ ...deps, verifyTip: async (tip) => (tip === sneaked ? `commit ${tip.slice(0, 12)} is not signed` : undefined) }, req);
    expect(r).toMatchObject({ status: 'refused', reason: expect.stringMatching(/^not building a revert on the tip \S+, which is not verified: commit \S+ is not signed/) });
    expect(git.pushes).toHaveLength(0);
  });

  it("quotes the failed container's output in the commit only when the operator allows it", async () => {
    const quoted = async (allow: boolean) => {
      const { git, req, deps } = setup();
      const r = await revertFailedUpdate({ ...deps, ...(allow ? { commitContainerOutput: true } : {}) }, { ...req, reason: 'health check failed; output: connection to 10.1.2.3:5432 refused', logs: 'FATAL: internal-db.corp.example' });
      expect(r.status).toBe('pushed');
      return (await git.commitInfo(git.tip)).body + git.fileAt(git.tip, 'renovate.json');
    };
    const off = await quoted(false);
    expect(off).not.toMatch(/10\.1\.2\.3|internal-db/);
    expect(off).toContain('Failed check: health check failed');
    expect(off).toContain("The failed container's output is not quoted here (source.git.commitContainerOutput is off)");
    const on = await quoted(true);
    expect(on).toContain('FATAL: internal-db.corp.example');
    expect(on).toContain('output: connection to 10.1.2.3:5432 refused');
  });

  it('refused credentials: refused, with the reason, nothing pushed', async () => {
    const { git, req, deps } = setup();
    git.failNextPush({ kind: 'auth' });
    const r = await revertFailedUpdate(deps, req);
    expect(r).toMatchObject({ status: 'refused', reason: expect.stringContaining('credentials refused') });
    expect(git.pushes).toHaveLength(0);
  });

  it('killed after the push: the next attempt finds its own commit instead of pushing again', async () => {
    const { git, req, deps } = setup();
    git.failNextPush({ kind: 'crash-after-push' });
    await expect(revertFailedUpdate(deps, req)).rejects.toBeInstanceOf(ProcessDied);
    expect(git.pushes).toHaveLength(1);
    await git.fetch();
    const own = await findOwnRevert(deps, req);
    expect(own).toMatchObject({ status: 'pushed', sha: git.tip, quarantined: '1.1.0' });
    expect(git.pushes).toHaveLength(1);
  });

  it('the branch no longer asks for the failed spec (a person fixed it): nothing to revert', async () => {
    const { git, req, deps } = setup();
    git.serverCommit({ 'desired-state/stack.yaml': stack('1.1.1', 'c') }, 'Fix web');
    expect(await revertFailedUpdate(deps, req)).toMatchObject({ status: 'not-needed' });
    expect(git.pushes).toHaveLength(0);
  });
});
