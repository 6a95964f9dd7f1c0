/**
 * The desired state from a real Git server over HTTP with Basic auth (git http-backend):
 * sync, webhook, a failed update written back as a revert commit with a quarantine rule,
 * a branch that moves meanwhile, a refused push, a server that goes down, invalid YAML.
 * Commit signatures: git-signatures.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { GitWorkspace, OPERATOR, RENOVATE, readFileAtHead } from '../harness/git-repo.js';
import { git as gitCli, withCliClone } from '../harness/git-cli.js';
import { freePort, uniqueName } from '../harness/ports.js';
import { AgentFixture, CLI, eventually, runNode } from './support/agent-cli.js';

const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
const RENOVATE_JSON = `${JSON.stringify({ $schema: 'https://docs.renovatebot.com/renovate-schema.json', enabledManagers: ['docker-compose'], packageRules: [] }, null, 2)}\n`;

let server: GitServer;
let f: AgentFixture;
let ws: GitWorkspace;
let url: string;

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
  url = server.repoUrl(name);
  ws = await GitWorkspace.init(url, server.auth || undefined, { 'desired-state/stack.yaml': `# The web service of the test host.\n${f.webYaml({ version: '1.0.0' })}\n`, 'renovate.json': RENOVATE_JSON, 'README.md': 'test host\n' }, 'Initial desired state');
  f.useGit(url, PASSWORD);
});
afterEach(async () => {
  ws.cleanup();
  await f.cleanup();
});

/** Commits a new version of the web service as Renovate would. */
async function bump(version: string, opts: Parameters<AgentFixture['webYaml']>[0] extends infer O ? Partial<O> : never = {}, message = `Update fixture/web to ${version}`): Promise<string> {
  await ws.pull();
  await ws.write('desired-state/stack.yaml', `# The web service of the test host.\n${f.webYaml({ version, ...opts })}\n`);
  const sha = await ws.commit(message, { author: RENOVATE });
  await ws.push();
  return sha;
}

describe('sync from Git', () => {
  it('a wrong password is named as such: HTTP 401 and the URL without credentials, not "the operation was canceled"', async () => {
    f.useGit(url, 'not-the-password');
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.unavailable);
    expect(r.stderr).toContain(`fetch ${url}: the server refused the credentials of agent (HTTP 401)`);
    expect(r.stderr).toContain('[SOURCE_AUTH_FAILED]');
    expect(r.stderr).not.toMatch(/not-the-password|operation was canceled/i);
    const s = await f.status();
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SourceUnavailable' });
  });

  it('no credentials configured for a server that asks for them: says so', async () => {
    f.gitEnv = { AGENT_HOST_NAME: 'test-host' };
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.unavailable);
    expect(r.stderr).toContain(`fetch ${url}: the server asks for credentials (HTTP 401) and none are configured`);
  });

  it('agent validate <dir> checks that directory, whatever AGENT_GIT_* says (an explicit directory wins)', async () => {
    f.writeDesired(f.webYaml({ version: '1.0.0' }));
    const r = await runNode([CLI, 'validate', f.sourceDir, '--state-dir', f.stateDir], { AGENT_GIT_USERNAME: 'agent', AGENT_GIT_PATH: 'desired-state' });
    expect(r.stderr).not.toContain("must have required property 'url'");
    expect(r.stdout).toContain(`${f.sourceDir}: valid`);
    expect(r.code).toBe(EXIT.ok);
  });

  it('applies a version bump pushed to the branch; status shows repository, branch and commits, credentials redacted', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');
    const sha = await bump('1.1.0');
    const r = await f.run('apply');
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.1.0');
    const s = await f.status();
    expect(s.source).toMatchObject({ kind: 'git', location: url, branch: 'main', path: 'desired-state', revision: sha, commit: { sha, subject: 'Update fixture/web to 1.1.0', author: `${RENOVATE.name} <${RENOVATE.email}>` } });
    expect(s.lastAppliedCommit?.sha).toBe(sha);
    const text = await f.run('status');
    expect(text.stdout).toContain('Update fixture/web to 1.1.0');
    for (const o of [r, text]) expect(o.stdout + o.stderr).not.toContain(PASSWORD);
  });

  it('applies a human `git revert` of an update commit through the same transaction', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const update = await bump('1.1.0');
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await ws.pull();
    await ws.revert(update, { author: OPERATOR });
    await ws.push();
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.services[0]?.lastTransaction).toMatchObject({ result: 'succeeded', kind: 'update' });
    expect(s.source?.commit?.subject).toBe('Revert "Update fixture/web to 1.1.0"');
  });

  it('invalid YAML committed: not applied, the error names the file in the repository and the line', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await ws.pull();
    await ws.write('desired-state/stack.yaml', `${f.webYaml({ version: '1.1.0' })}\n    restart: [always\n`);
    await ws.commit('Broken edit', { author: OPERATOR });
    await ws.push();
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.invalidDesiredState);
    expect(r.stdout).toMatch(/desired-state\/stack\.yaml:\d+:\d+: /);
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.invalid?.issues[0]?.file).toBe('desired-state/stack.yaml');
    expect(s.conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'ValidationFailed' });
  });

  it('server down: services untouched, status says so; recovery when it is back', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const before = await f.containers();
    await server.pause();
    try {
      const r = await f.run('apply');
      expect(r.code).toBe(EXIT.unavailable);
      expect(await f.containers()).toEqual(before);
      const s = await f.status();
      expect(s.source?.error).toMatch(/ECONNREFUSED/);
      expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SourceUnavailable' });
      expect((await f.run('status')).stdout).toMatch(/last fetch FAILED/);
    } finally {
      await server.resume();
    }
    await bump('1.1.0');
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.1.0');
    const s = await f.status();
    expect(s.source?.error).toBeUndefined();
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  });

  it('a server that never answered: the agent reports the source unavailable and changes nothing', async () => {
    const fresh = await AgentFixture.create();
    try {
      fresh.useGit(`http://127.0.0.1:${await freePort()}/nothing.git`, PASSWORD);
      const r = await fresh.run('apply');
      expect(r.code).toBe(EXIT.unavailable);
      expect(r.stderr).toContain('ECONNREFUSED');
    } finally {
      await fresh.cleanup();
    }
  });
});

describe('a failed update is written back to Git', () => {
  it('rolls back, pushes a revert commit with a quarantine rule, and refuses the quarantined version until the rule is removed', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const bad = await bump('1.3.0');
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    expect(await f.page()).toBe('1.0.0');

    // What a fresh clone of the repository says.
    const head = await withCliClone(server.credentialUrl(url.split('/').pop()!.replace(/\.git$/, '')), async (dir) => {
      const log = await gitCli(['log', '-1', '--format=%H%n%an <%ae>%n%B'], { cwd: dir });
      const stack = await gitCli(['show', 'HEAD:desired-state/stack.yaml'], { cwd: dir });
      const renovate = await gitCli(['show', 'HEAD:renovate.json'], { cwd: dir });
      return { log: log.stdout, stack: stack.stdout, renovate: JSON.parse(renovate.stdout) as { packageRules: Record<string, unknown>[] } };
    });
    expect(head.log).toContain('Revert "Update fixture/web to 1.3.0"');
    expect(head.log).toContain('gitops-agent <gitops-agent@localhost>');
    expect(head.log).toContain(`Reverts: ${bad}`);
    expect(head.log).toContain('container exited with code 3');
    // The container's output stays on the host unless the operator allows it in commits.
    expect(head.log).not.toContain('fatal: config invalid');
    expect(head.log).toContain("The failed container's output is not quoted here (source.git.commitContainerOutput is off)");
    expect(head.stack).toContain(f.image('1.0.0'));
    expect(head.stack).toContain('# The web service of the test host.');
    expect(head.renovate.packageRules).toEqual([
      expect.objectContaining({ matchDatasources: ['docker'], matchDepNames: [`${f.h.registryHost}/fixture/web`], allowedVersions: '!/^1\\.3\\.0$/', description: expect.stringMatching(/^gitops-agent quarantine: web 1\.3\.0 failed on test-host/) }),
    ]);

    const s = await f.status();
    expect(s.services[0]?.revert).toMatchObject({ state: 'pushed', reverts: bad, quarantined: '1.3.0' });
    expect(s.quarantined).toEqual([expect.objectContaining({ service: 'web', version: '1.3.0', blocking: false })]);

    // Git now says what runs: the next pass has nothing to do.
    const next = await f.run('apply');
    expect(next.code).toBe(EXIT.ok);
    expect(next.stdout).toContain('no-op');
    expect((await f.status()).conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });

    // The quarantined version, asked for again, is refused; the next version is not.
    await bump('1.3.0', {}, 'Try 1.3.0 again');
    const refused = await f.run('apply');
    // Not applied, and the exit code says the host does not run what Git asks for.
    expect(refused.code).toBe(EXIT.updateFailed);
    expect(refused.stderr).toMatch(/web is held \(1\.3\.0 is quarantined in renovate\.json/);
    expect(await f.page()).toBe('1.0.0');
    const q = await f.status();
    expect(q.quarantined).toEqual([expect.objectContaining({ service: 'web', version: '1.3.0', blocking: true })]);
    expect(q.services[0]?.pending?.reasons.join(' ')).toContain('quarantined');
    expect(q.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Quarantined' });
    await bump('1.2.0');
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.2.0');
  });

  it('rebuilds the revert on the new tip when another commit is pushed meanwhile', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    await bump('1.3.0');
    // The agent stops for a moment right before pushing its revert; meanwhile a person pushes.
    const applying = f.start('apply', [], { AGENT_FAILPOINTS: 'before:revert-push=sleep(3000)' });
    await eventually('the revert to be ready to push', async () => applying.output().includes('failpoint before:revert-push reached'), 60_000, 100);
    await ws.pull();
    await ws.write('README.md', 'test host, edited meanwhile\n');
    const other = await ws.commit('Edit the README', { author: OPERATOR });
    await ws.push();
    const r = await applying.done;
    expect(r.code).toBe(EXIT.updateFailed);
    expect(r.stderr).toContain('rebuilding it on the new tip');
    await ws.pull();
    const log = await ws.log(3);
    expect(log[0]?.subject).toBe('Revert "Update fixture/web to 1.3.0"');
    expect(log[0]?.parents).toEqual([other]);
    expect(await readFileAtHead(url, server.auth || undefined, 'README.md')).toBe('test host, edited meanwhile\n');
    expect(await readFileAtHead(url, server.auth || undefined, 'desired-state/stack.yaml')).toContain(f.image('1.0.0'));
    expect(await f.page()).toBe('1.0.0');
  });

  it.each(['before:revert-push', 'after:revert-push'])('the agent killed at %s: on restart the revert is pushed exactly once', async (point) => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const bad = await bump('1.3.0');
    const killed = await f.run('apply', [], { AGENT_FAILPOINTS: point });
    expect(killed.signal).toBe('SIGKILL');
    expect(await f.page()).toBe('1.0.0');
    const again = await f.run('apply');
    expect([EXIT.ok, EXIT.updateFailed]).toContain(again.code);
    await ws.pull();
    const log = await ws.log(5);
    const reverts = log.filter((c) => c.subject === 'Revert "Update fixture/web to 1.3.0"');
    expect(reverts).toHaveLength(1);
    expect(reverts[0]?.body).toContain(`Reverts: ${bad}`);
    expect(await f.page()).toBe('1.0.0');
    // The next pass reads the revert commit: Git and what runs agree again.
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const s = await f.status();
    expect(s.services[0]?.held).toBeUndefined();
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  });

  it('push refused by a pre-receive hook: held on the last good version, Degraded with the reason', async () => {
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    const bad = await bump('1.3.0');
    server.setPreReceiveHook(url.split('/').pop()!.replace(/\.git$/, ''), 'echo "main is protected: open a pull request"\nexit 1\n');
    const r = await f.run('apply');
    expect(r.code).toBe(EXIT.updateFailed);
    expect(r.stderr).toContain('Revert commit refused');
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.services[0]?.revert).toMatchObject({ state: 'refused', reason: expect.stringContaining('pre-receive hook declined') });
    expect(s.conditions.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'RevertRefused' });
    expect((await ws.log(1))[0]?.sha).toBe(bad);
    // Held: the failed spec is not tried again, and what runs stays.
    const again = await f.run('apply');
    expect(again.stderr).not.toContain('Transaction');
    expect(await f.page()).toBe('1.0.0');
  });
});

describe('webhook', () => {
  let agent: ChildProcess | undefined;
  afterEach(() => {
    if (agent?.exitCode === null) agent.kill('SIGKILL');
  });

  it('syncs at once on a correctly signed push event; a bad or missing signature gets 401 and triggers nothing', async () => {
    const secret = `hook-${randomBytes(8).toString('hex')}`;
    const secretFile = join(f.root, 'webhook-secret');
    writeFileSync(secretFile, `${secret}\n`);
    const port = await freePort();
    let logs = '';
    agent = spawn(process.execPath, f.args('run', ['--interval', '1h', '--listen', `127.0.0.1:${port}`]), { env: { ...process.env, ...f.gitEnv, AGENT_WEBHOOK_SECRET_FILE: secretFile, AGENT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
    await eventually('the first deploy', async () => (await f.page()) === '1.0.0', 60_000);
    await eventually('the transaction to finish', async () => (await f.status()).services[0]?.lastTransaction?.result === 'succeeded', 30_000);
    await bump('1.1.0');

    const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: 'x' }));
    const post = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${port}/hooks/git`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    const sign = (key: string) => createHmac('sha256', key).update(body).digest('hex');

    const passBefore = (await f.status()).lastReconcile?.startedAt;
    expect((await post({})).status).toBe(401);
    expect((await post({ 'X-Gitea-Signature': sign('wrong-secret') })).status).toBe(401);
    expect((await post({ 'X-Hub-Signature-256': `sha256=${'0'.repeat(64)}` })).status).toBe(401);
    // A refused call triggers nothing: no pass started (a pass would start at once), nothing accepted.
    await new Promise((r) => setTimeout(r, 500));
    expect((await f.status()).lastReconcile?.startedAt).toBe(passBefore);
    expect(await f.page()).toBe('1.0.0');
    expect(logs.match(/Webhook refused/g)).toHaveLength(3);
    expect(logs).not.toContain('Webhook accepted');

    const ok = await post({ 'X-Gitea-Signature': sign(secret) });
    expect(ok.status).toBe(202);
    await eventually('the update triggered by the webhook', async () => (await f.page()) === '1.1.0', 30_000);

    await eventually('the transaction to finish', async () => (await f.status()).services[0]?.lastTransaction?.to?.includes(':1.1.0@'), 30_000);
    await bump('1.2.0');
    const gh = await post({ 'X-Hub-Signature-256': `sha256=${sign(secret)}` });
    expect(gh.status).toBe(202);
    await eventually('the update triggered by a GitHub-style webhook', async () => (await f.page()) === '1.2.0', 30_000);
    agent.kill('SIGTERM');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(PASSWORD);
  });
});

describe('configuration files from the repository', () => {
  /** web serves the repository's site/ folder (a relative bind); its health needs site/ok to say "good". */
  const configured = () =>
    f.webYaml({
      version: '1.0.0',
      probes: [`- exec: [sh, -c, "grep -q good /www/site/ok"]\n            interval: 250ms`, `- http: http://127.0.0.1:${f.port}/site/page.txt\n            interval: 250ms`],
      extra: '    volumes: ["./site:/www/site:ro"]',
    });
  const page = async () => (await fetch(`http://127.0.0.1:${f.port}/site/page.txt`, { signal: AbortSignal.timeout(2000) })).text();
  async function change(files: Record<string, string | null>, message: string): Promise<string> {
    await ws.pull();
    for (const [p, c] of Object.entries(files)) await (c === null ? ws.remove(p) : ws.write(p, c));
    const sha = await ws.commit(message, { author: OPERATOR });
    await ws.push();
    return sha;
  }

  it('a changed file is an update of the service that binds it; a broken one is rolled back, and the revert commit restores the files', async () => {
    await change({ 'desired-state/stack.yaml': `${configured()}\n`, 'desired-state/site/page.txt': 'v1\n', 'desired-state/site/ok': 'good\n' }, 'Serve the site from the repository');
    const first = await f.run('apply');
    expect(first.code, first.stdout + first.stderr).toBe(EXIT.ok);
    expect(await page()).toBe('v1\n');
    const copies = () => readdirSync(join(f.stateDir, 'project-files')).filter((n) => !n.includes('.tmp-'));
    expect(copies()).toHaveLength(1);

    await change({ 'desired-state/site/page.txt': 'v2\n' }, 'New page');
    const second = await f.run('apply');
    expect(second.code, second.stdout + second.stderr).toBe(EXIT.ok);
    expect(second.stdout).toMatch(/^web\s+succeeded/m);
    expect(await page()).toBe('v2\n');
    // The copy of v1 is bound by nothing any more: removed.
    const v2 = copies();
    expect(v2).toHaveLength(1);

    const bad = await change({ 'desired-state/site/ok': 'broken\n', 'desired-state/site/extra.txt': 'added\n' }, 'Break the health file');
    const third = await f.run('apply');
    expect(third.code).toBe(EXIT.updateFailed);
    expect(await page()).toBe('v2\n');
    const head = await withCliClone(server.credentialUrl(url.split('/').pop()!.replace(/\.git$/, '')), async (dir) => ({
      log: (await gitCli(['log', '-1', '--format=%B'], { cwd: dir })).stdout,
      ok: (await gitCli(['show', 'HEAD:desired-state/site/ok'], { cwd: dir })).stdout,
      files: (await gitCli(['ls-tree', '-r', '--name-only', 'HEAD', 'desired-state/site'], { cwd: dir })).stdout.trim().split('\n'),
    }));
    expect(head.log).toContain(`Reverts: ${bad}`);
    expect(head.ok).toBe('good\n');
    expect(head.files).toEqual(['desired-state/site/ok', 'desired-state/site/page.txt']);
    const next = await f.run('apply');
    expect(next.code, next.stdout + next.stderr).toBe(EXIT.ok);
    expect(next.stdout).toContain('no-op');
    expect(copies()).toEqual(v2);
  });
});
