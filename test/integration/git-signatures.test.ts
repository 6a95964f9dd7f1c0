/**
 * Commit signatures against a real Git server over HTTP: the tip and every commit since the
 * last verified one signed by a trusted key, descent from it, and the agent's own signed reverts.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { GitWorkspace, OPERATOR } from '../harness/git-repo.js';
import { generateTestKey, verifyCommitSignature } from '../harness/git-sign.js';
import { uniqueName } from '../harness/ports.js';
import { AgentFixture } from './support/agent-cli.js';

const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
const RENOVATE_JSON = `${JSON.stringify({ $schema: 'https://docs.renovatebot.com/renovate-schema.json', enabledManagers: ['docker-compose'], packageRules: [] }, null, 2)}\n`;

let server: GitServer;
let f: AgentFixture;
let ws: GitWorkspace;

beforeAll(async () => {
  server = await startGitServer({ auth: { username: 'agent', password: PASSWORD } });
});
afterAll(async () => {
  await server.stop();
});

beforeEach(async () => {
  f = await AgentFixture.create();
  const name = uniqueName('repo');
  await server.createRepo(name);
  const url = server.repoUrl(name);
  ws = await GitWorkspace.init(url, server.auth || undefined, { 'desired-state/stack.yaml': `# The web service of the test host.\n${f.webYaml({ version: '1.0.0' })}\n`, 'renovate.json': RENOVATE_JSON, 'README.md': 'test host\n' }, 'Initial desired state');
  f.useGit(url, PASSWORD);
});
afterEach(async () => {
  ws.cleanup();
  await f.cleanup();
});

describe('signed commits', () => {
  it('applies a tip signed by a trusted key; refuses unsigned and untrusted tips; signs its own reverts', async () => {
    const trusted = await generateTestKey('Operator', 'operator@example.test');
    const stranger = await generateTestKey('Stranger', 'stranger@example.test');
    const agentKey = await generateTestKey('gitops-agent', 'gitops-agent@localhost');
    writeFileSync(join(f.root, 'trusted.asc'), `${trusted.publicKey}\n${agentKey.publicKey}\n`);
    writeFileSync(join(f.root, 'agent-signing.asc'), agentKey.privateKey);
    f.gitEnv = { ...f.gitEnv, AGENT_GIT_VERIFY_KEYS: join(f.root, 'trusted.asc'), AGENT_GIT_SIGNING_KEY_FILE: join(f.root, 'agent-signing.asc') };

    // The initial commit is unsigned: refused, nothing applied.
    const first = await f.run('apply');
    expect(first.code).toBe(EXIT.invalidDesiredState);
    expect(first.stdout).toContain('signature refused: commit is not signed');
    expect(await f.containers()).toEqual([]);
    expect((await f.status()).conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'SignatureRefused' });

    await ws.pull();
    await ws.write('desired-state/stack.yaml', `${f.webYaml({ version: '1.0.0' })}\n`);
    const deployed = await ws.commit('Signed deploy', { author: OPERATOR, signingKey: trusted.privateKey });
    await ws.push();
    const signed = await f.run('apply');
    expect(signed.code, `signed: ${signed.stdout}${signed.stderr}`).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');

    await ws.write('desired-state/stack.yaml', `${f.webYaml({ version: '1.1.0' })}\n`);
    await ws.commit('Signed by someone else', { author: OPERATOR, signingKey: stranger.privateKey });
    await ws.push();
    const untrusted = await f.run('apply');
    expect(untrusted.code).toBe(EXIT.invalidDesiredState);
    expect(untrusted.stdout).toMatch(/signed by key [0-9a-f]+, which is not trusted/);
    expect(await f.page()).toBe('1.0.0');

    // A trusted signature on top does not vouch for the stranger's commit under it.
    await ws.write('desired-state/stack.yaml', `${f.webYaml({ version: '1.2.0' })}\n`);
    const strangers = (await ws.log(1))[0]!.sha;
    await ws.commit('Signed on top of a stranger', { author: OPERATOR, signingKey: trusted.privateKey });
    await ws.push();
    const underneath = await f.run('apply');
    expect(underneath.code).toBe(EXIT.invalidDesiredState);
    expect(underneath.stdout).toContain(`commit ${strangers.slice(0, 12)}, between the last verified ${deployed.slice(0, 12)} and the tip`);
    expect(await f.page()).toBe('1.0.0');

    // The operator drops the stranger's commits (a force-push back to the verified commit) and goes on.
    await ws.resetHard(deployed);
    await ws.write('desired-state/stack.yaml', `${f.webYaml({ version: '1.3.0' })}\n`);
    await ws.commit('Signed, but crashes', { author: OPERATOR, signingKey: trusted.privateKey });
    await ws.push({ force: true });
    expect((await f.run('apply')).code).toBe(EXIT.updateFailed);
    await ws.pull();
    const [revert] = await ws.log(1);
    expect(revert?.subject).toBe('Revert "Signed, but crashes"');
    const { default: isogit } = await import('isomorphic-git');
    const fs = await import('node:fs');
    const raw = await isogit.readCommit({ fs, dir: ws.dir, oid: revert!.sha });
    expect(raw.commit.gpgsig).toBeDefined();
    expect(await verifyCommitSignature(raw.payload, raw.commit.gpgsig!, agentKey.publicKey)).toBe(true);
    // The agent trusts its own key, so its signed revert is applied like any commit.
    const own = await f.run('apply');
    expect(own.code, `own: ${own.stdout}${own.stderr} trusted=${trusted.fingerprint} agent=${agentKey.fingerprint} stranger=${stranger.fingerprint}`).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');

    // A force-push back to an older signed commit is a downgrade nobody signed: refused.
    await ws.resetHard(deployed);
    await ws.push({ force: true });
    const back = await f.run('apply');
    expect(back.code).toBe(EXIT.invalidDesiredState);
    expect(back.stdout).toMatch(new RegExp(`the tip ${deployed.slice(0, 12)} is refused: it does not descend from [0-9a-f]{12}, the last verified commit`));
    // ...unless the operator allows rewinds.
    expect((await f.run('apply', [], { AGENT_GIT_VERIFY_ALLOW_REWIND: 'true' })).code).toBe(EXIT.ok);
  });
});
