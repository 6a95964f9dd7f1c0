/**
 * Smoke test of the Git test server (test/harness/git-server.ts) and of the operator/Renovate
 * helpers (git-repo.ts, git-sign.ts, git-cli.ts). It also pins down the error shapes that
 * isomorphic-git 1.44 gives the agent for each way a Git server can fail, so a change there
 * shows up here first.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git as gitCli, withCliClone } from '../harness/git-cli.js';
import { GitWorkspace, OPERATOR, RENOVATE, readFileAtHead } from '../harness/git-repo.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { generateTestKey, verifyCommitSignature } from '../harness/git-sign.js';
import { gitTempDir, removeGitTempDir } from '../harness/git-temp.js';

let server: GitServer;
const workspaces: GitWorkspace[] = [];
let repoCount = 0;

/** A new repository with a first commit, and the workspace that pushed it. */
async function newRepo(files: Record<string, string> = { 'stack.yaml': 'version: 1\n' }): Promise<{ name: string; url: string; ws: GitWorkspace }> {
  repoCount += 1;
  const name = `config-${repoCount}`;
  await server.createRepo(name);
  const url = server.repoUrl(name);
  const ws = track(await GitWorkspace.init(url, server.auth, files, 'initial'));
  return { name, url, ws };
}

function track(ws: GitWorkspace): GitWorkspace {
  workspaces.push(ws);
  return ws;
}

/** The rejection of `p`, as an error with isomorphic-git's fields. */
async function failure(p: Promise<unknown>): Promise<Error & { code?: string; data?: Record<string, unknown> }> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err as Error & { code?: string; data?: Record<string, unknown> },
  );
}

beforeAll(async () => {
  server = await startGitServer({ auth: { username: 'agent', password: 's3cret' } });
});

afterAll(async () => {
  for (const ws of workspaces) ws.cleanup();
  await server?.stop();
});

describe('git test server', () => {
  it('serves clone, push and pull between two workspaces, and pushes persist', async () => {
    const { url, ws: operator } = await newRepo({ 'stack.yaml': 'version: 1\n', 'services/web.yaml': 'image: web:1.0.0\n' });
    expect(url).toBe(`${server.url}/config-${repoCount}.git`);
    const renovate = track(await GitWorkspace.clone(url, server.auth));
    expect(renovate.read('services/web.yaml')).toBe('image: web:1.0.0\n');

    await renovate.write('services/web.yaml', 'image: web:1.1.0\n');
    const sha = await renovate.commit('chore(deps): update web to 1.1.0\n\nRenovate body', { author: RENOVATE });
    await renovate.push();
    expect(await operator.pull()).toBe(sha);
    expect(operator.read('services/web.yaml')).toBe('image: web:1.1.0\n');

    const [head, first] = await operator.log();
    expect(head).toMatchObject({ sha, subject: 'chore(deps): update web to 1.1.0', body: 'Renovate body', parents: [first?.sha] });
    expect(head?.author).toMatchObject(RENOVATE);
    expect(first).toMatchObject({ subject: 'initial', body: '', parents: [] });
    expect(await readFileAtHead(url, server.auth, 'services/web.yaml')).toBe('image: web:1.1.0\n');
    expect(await readFileAtHead(url, server.auth, 'missing.yaml')).toBeUndefined();

    // pull also removes files deleted upstream
    await renovate.remove('services/web.yaml');
    await renovate.commit('remove web');
    await renovate.push();
    await operator.pull();
    expect(operator.read('services/web.yaml')).toBeUndefined();
    // the bare repository on disk has it (not a throwaway copy)
    const bare = await gitCli(['--git-dir', server.repoPath(`config-${repoCount}`), 'log', '--format=%s', 'main']);
    expect(bare.stdout.split('\n')[0]).toBe('remove web');
  });

  it('wrong or missing credentials: HttpError 401 with WWW-Authenticate', async () => {
    const { url } = await newRepo();
    const err = await failure(GitWorkspace.clone(url, { username: 'agent', password: 'wrong' }));
    // { code: 'HttpError', data: { statusCode: 401, statusMessage: 'Unauthorized', response: <body> } }
    expect(err.code).toBe('HttpError');
    expect(err.data).toMatchObject({ statusCode: 401, statusMessage: 'Unauthorized' });
    const anonymous = await failure(readFileAtHead(url, undefined, 'stack.yaml'));
    expect(anonymous.data?.statusCode).toBe(401);
    const res = await fetch(`${url}/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="git"');
    await res.body?.cancel();
  });

  it('a pre-receive hook refusing the push: GitPushError, with the hook output as messages', async () => {
    const { name, url, ws } = await newRepo();
    server.setPreReceiveHook(name, 'echo "policy: pushes to main are frozen"\nexit 1\n');
    await ws.write('stack.yaml', 'version: 2\n');
    await ws.commit('change');
    const err = await failure(ws.push());
    // GitPushError: { code: 'GitPushError', message: 'One or more branches were not updated: ...',
    //   data: { prettyDetails: '\n  - refs/heads/main: pre-receive hook declined',
    //           result: { ok: true /* the unpack went fine */, refs: { 'refs/heads/main': { ok: false,
    //             error: 'pre-receive hook declined' } }, headers } } }
    // The hook's stdout/stderr reach the client only through push's onMessage (no "remote: " prefix).
    expect(err.code).toBe('GitPushError');
    expect(err.data).toMatchObject({ result: { ok: true, refs: { 'refs/heads/main': { ok: false, error: 'pre-receive hook declined' } } } });
    expect(ws.lastPushMessages).toContain('policy: pushes to main are frozen');
    expect(await readFileAtHead(url, server.auth, 'stack.yaml')).toBe('version: 1\n');

    server.setPreReceiveHook(name, null);
    await ws.push();
    expect(await readFileAtHead(url, server.auth, 'stack.yaml')).toBe('version: 2\n');
  });

  it('a non-fast-forward push: PushRejectedError (checked client side), force overrides it', async () => {
    const { url, ws: a } = await newRepo();
    const b = track(await GitWorkspace.clone(url, server.auth));
    await a.write('stack.yaml', 'version: a\n');
    await a.commit('from a');
    await a.push();
    await b.write('stack.yaml', 'version: b\n');
    await b.commit('from b');
    const err = await failure(b.push());
    // { code: 'PushRejectedError', data: { reason: 'not-fast-forward' } } ('tag-exists' for tags).
    // isomorphic-git decides this BEFORE sending anything, from the old remote oid and the
    // local history; the server never sees the push.
    expect(err.code).toBe('PushRejectedError');
    expect(err.data).toEqual({ reason: 'not-fast-forward' });
    await b.push({ force: true });
    expect(await readFileAtHead(url, server.auth, 'stack.yaml')).toBe('version: b\n');
    // a force-pushed (rewritten) branch: pull resets to it
    await a.pull();
    expect(a.read('stack.yaml')).toBe('version: b\n');
    expect(await a.headSha()).toBe(await b.headSha());
  });

  it('pause: connection refused on the same port; resume: works again', async () => {
    const { ws } = await newRepo();
    await ws.pull(); // leaves a keep-alive socket in the client's pool: pause must drop it
    const before = server.requests;
    await server.pause();
    const err = await failure(ws.pull());
    // a plain Node system error, not wrapped: { code: 'ECONNREFUSED', errno: -111,
    //   syscall: 'connect', address: '127.0.0.1', port } plus isomorphic-git's `caller: 'git.fetch'`
    expect(err.code).toBe('ECONNREFUSED');
    expect(err).toMatchObject({ syscall: 'connect', address: '127.0.0.1', port: server.port });
    expect(server.requests).toBe(before);
    await server.resume();
    await ws.pull();
    expect(server.requests).toBeGreaterThan(before);
  });

  it('signed commits: gpgsig and payload verify with the right public key only', async () => {
    const { url, ws } = await newRepo();
    const [key, other] = await Promise.all([generateTestKey('Operator', 'operator@example.test'), generateTestKey('Mallory', 'mallory@example.test')]);
    expect(key.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    await ws.write('stack.yaml', 'version: signed\n');
    const sha = await ws.commit('signed change', { signingKey: key.privateKey });
    await ws.push();

    const fresh = track(await GitWorkspace.clone(url, server.auth));
    const { commit, payload } = await git.readCommit({ fs, dir: fresh.dir, oid: sha });
    expect(commit.gpgsig).toMatch(/^-----BEGIN PGP SIGNATURE-----/);
    expect(payload).not.toContain('gpgsig');
    expect(await verifyCommitSignature(payload, commit.gpgsig ?? '', key.publicKey)).toBe(true);
    expect(await verifyCommitSignature(payload, commit.gpgsig ?? '', other.publicKey)).toBe(false);
    expect(await verifyCommitSignature(payload.replace('signed change', 'forged'), commit.gpgsig ?? '', key.publicKey)).toBe(false);
    const [, unsigned] = await fresh.log(2);
    expect((await git.readCommit({ fs, dir: fresh.dir, oid: unsigned?.sha ?? '' })).commit.gpgsig).toBeUndefined();
  });

  it('revert restores the files a commit changed, with git revert\'s message', async () => {
    const { url, ws } = await newRepo({ 'stack.yaml': 'version: 1\n', 'keep.txt': 'keep\n' });
    await ws.write('stack.yaml', 'version: 2\n');
    await ws.write('new/added.yaml', 'added\n');
    await ws.remove('keep.txt');
    const bad = await ws.commit('bump to 2');
    const sha = await ws.revert(bad);
    await ws.push();
    expect(await readFileAtHead(url, server.auth, 'stack.yaml')).toBe('version: 1\n');
    expect(await readFileAtHead(url, server.auth, 'keep.txt')).toBe('keep\n');
    expect(await readFileAtHead(url, server.auth, 'new/added.yaml')).toBeUndefined();
    const [head] = await ws.log(1);
    expect(head).toMatchObject({ sha, subject: 'Revert "bump to 2"', body: `This reverts commit ${bad}.`, parents: [bad] });
  });

  it('the git CLI clones and pushes (chunked 2 MB upload) with credentials in the URL', async () => {
    const { name, url } = await newRepo();
    await withCliClone(server.credentialUrl(name), async (dir) => {
      expect(readFileSync(join(dir, 'stack.yaml'), 'utf8')).toBe('version: 1\n');
      // above http.postBuffer (1 MiB) the CLI sends the pack chunked, without Content-Length
      writeFileSync(join(dir, 'blob.bin'), randomBytes(2 * 1024 * 1024));
      await gitCli(['add', 'blob.bin'], { cwd: dir });
      await gitCli(['commit', '--quiet', '-m', 'big file'], { cwd: dir });
      await gitCli(['push', '--quiet', 'origin', 'main'], { cwd: dir });
    });
    expect((await readFileAtHead(url, server.auth, 'blob.bin'))?.length).toBeGreaterThan(0);
    // without credentials the CLI fails at once (no prompt)
    const dir = gitTempDir('gacli');
    try {
      const res = await gitCli(['clone', url, dir], { allowFailure: true });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/Authentication failed|could not read Username/);
    } finally {
      removeGitTempDir(dir);
    }
  });

  it('anonymous server (auth: false) accepts pushes too', async () => {
    const anon = await startGitServer({ auth: false });
    try {
      await anon.createRepo('open', { branch: 'trunk' });
      const ws = track(await GitWorkspace.init(anon.repoUrl('open'), anon.auth, { 'a.txt': 'a\n' }, 'first', 'trunk'));
      await ws.write('a.txt', 'b\n');
      await ws.commit('second', { author: OPERATOR });
      await ws.push();
      expect(await readFileAtHead(anon.repoUrl('open'), false, 'a.txt', 'trunk')).toBe('b\n');
      const refs = await git.listServerRefs({ http, url: anon.repoUrl('open'), symrefs: true });
      expect(refs.find((r) => r.ref === 'HEAD')?.target).toBe('refs/heads/trunk');
    } finally {
      await anon.stop();
    }
  });
});
