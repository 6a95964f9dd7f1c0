/**
 * The agent's copy of the repository keeps no pack per fetch: every fetched pack is unpacked
 * into loose objects, so finding an object does not mean reading the index of every pack ever
 * fetched (which made each pass slower and churned memory: docs/soak.md). Reads, history and a
 * commit pushed from the copy still work.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GitRepo } from '../../agent/source/git/repo.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { GitWorkspace } from '../harness/git-repo.js';

let server: GitServer;
let root: string;
beforeAll(async () => {
  server = await startGitServer({ auth: { username: 'agent', password: 'pw-unpack' } });
  root = mkdtempSync(join(tmpdir(), 'gadt-unpack-'));
});
afterAll(async () => {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

it('unpacks each fetch into loose objects; reads, log and push keep working', async () => {
  await server.createRepo('unpack');
  const url = server.repoUrl('unpack');
  const ws = await GitWorkspace.init(url, server.auth || undefined, { 'state/stack.yaml': 'name: s0\n' }, 'Commit 0');
  try {
    const gitdir = join(root, 'repo.git');
    const repo = new GitRepo(gitdir, url, 'main', { username: 'agent', password: 'pw-unpack' });
    const packs = () => (existsSync(join(gitdir, 'objects', 'pack')) ? readdirSync(join(gitdir, 'objects', 'pack')) : []);
    for (let i = 1; i <= 4; i++) {
      await ws.write('state/stack.yaml', `name: s${i}\n`);
      const sha = await ws.commit(`Commit ${i}`);
      await ws.push();
      expect(await repo.fetch()).toBe(sha);
      expect(packs()).toEqual([]);
      expect(await repo.readFile(sha, 'state/stack.yaml')).toBe(`name: s${i}\n`);
      expect((await repo.log(sha, 50)).map((c) => c.subject)).toEqual(Array.from({ length: i + 1 }, (_, k) => `Commit ${i - k}`));
    }
    const tip = await ws.headSha();
    const made = await repo.commitFiles(tip, { 'state/stack.yaml': 'name: back\n' }, 'From the copy', { name: 'agent', email: 'agent@localhost' });
    expect(await repo.push(made)).toEqual({ ok: true });
    expect(await ws.pull()).toBe(made);
    expect(ws.read('state/stack.yaml')).toBe('name: back\n');
    expect(readdirSync(join(gitdir, 'objects'), { recursive: true }).filter((n) => String(n).endsWith('.tmp'))).toEqual([]);
  } finally {
    ws.cleanup();
  }
});
