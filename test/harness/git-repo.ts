/**
 * Tests acting as the operator or as Renovate: commit and push to the test Git server with
 * isomorphic-git (in process, async, no git CLI, no user config).
 *
 * A GitWorkspace is a normal clone (working tree + .git) in a temp dir of its own, on one
 * branch with the remote `origin`. write()/remove() change the working tree AND the index
 * at once (like editing then `git add`/`git rm`), so commit() commits exactly what was
 * written since the last commit.
 */
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import git, { type PushResult } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import type { GitCredentials } from './git-server.js';
import { signCommitPayload } from './git-sign.js';
import { gitTempDir, removeGitTempDir } from './git-temp.js';

/** Credentials for the server, or false/undefined for an anonymous one. */
export type GitAuth = GitCredentials | false | undefined;

export interface GitAuthor {
  name: string;
  email: string;
}

export interface LogEntry {
  sha: string;
  /** First line of the message. */
  subject: string;
  /** The message after the subject and its blank line, without the trailing newline ('' if none). */
  body: string;
  author: GitAuthor & { timestamp: number };
  parents: string[];
}

export const OPERATOR: GitAuthor = { name: 'Test Operator', email: 'operator@example.test' };
export const RENOVATE: GitAuthor = { name: 'renovate[bot]', email: 'bot@renovateapp.com' };

const onAuthFor = (auth: GitAuth) => (auth ? () => ({ username: auth.username, password: auth.password }) : undefined);

export class GitWorkspace {
  /** Progress lines the server sent during the last push, without the `remote: ` prefix (e.g. a hook's output). */
  lastPushMessages: string[] = [];

  private constructor(
    readonly dir: string,
    readonly url: string,
    private readonly auth: GitAuth,
    readonly branch: string,
  ) {}

  /** Clone `branch` of `url` (full history of that branch only). */
  static async clone(url: string, auth: GitAuth, branch = 'main'): Promise<GitWorkspace> {
    const ws = new GitWorkspace(gitTempDir('gaws'), url, auth, branch);
    try {
      await git.clone({ fs, http, dir: ws.dir, url, ref: branch, singleBranch: true, onAuth: onAuthFor(auth) });
    } catch (err) {
      ws.cleanup();
      throw err;
    }
    return ws;
  }

  /**
   * First commit of an empty repository (created with GitServer.createRepo): write `files`,
   * commit them as OPERATOR and push `branch`.
   */
  static async init(url: string, auth: GitAuth, files: Record<string, string>, message: string, branch = 'main'): Promise<GitWorkspace> {
    const ws = new GitWorkspace(gitTempDir('gaws'), url, auth, branch);
    try {
      await git.init({ fs, dir: ws.dir, defaultBranch: branch });
      await git.addRemote({ fs, dir: ws.dir, remote: 'origin', url });
      for (const [path, content] of Object.entries(files)) await ws.write(path, content);
      await ws.commit(message);
      await ws.push();
      // what clone would have set up: branch tracking origin
      await git.setConfig({ fs, dir: ws.dir, path: `branch.${branch}.remote`, value: 'origin' });
      await git.setConfig({ fs, dir: ws.dir, path: `branch.${branch}.merge`, value: `refs/heads/${branch}` });
    } catch (err) {
      ws.cleanup();
      throw err;
    }
    return ws;
  }

  async write(path: string, content: string): Promise<void> {
    const full = join(this.dir, path);
    fs.mkdirSync(dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
    await git.add({ fs, dir: this.dir, filepath: path });
  }

  /** Content in the working tree, undefined when the file does not exist. */
  read(path: string): string | undefined {
    const full = join(this.dir, path);
    return fs.existsSync(full) ? fs.readFileSync(full, 'utf8') : undefined;
  }

  async remove(path: string): Promise<void> {
    fs.rmSync(join(this.dir, path), { force: true });
    await git.remove({ fs, dir: this.dir, filepath: path });
  }

  /** Commit the index; with `signingKey` (armored private key) the commit is OpenPGP-signed. */
  async commit(message: string, opts: { author?: GitAuthor; signingKey?: string } = {}): Promise<string> {
    const author = opts.author ?? OPERATOR;
    return git.commit({
      fs,
      dir: this.dir,
      message,
      author,
      committer: author,
      ...(opts.signingKey ? { signingKey: opts.signingKey, onSign: signCommitPayload } : {}),
    });
  }

  /**
   * Push the branch to origin. Throws isomorphic-git errors: PushRejectedError (client-side
   * non-fast-forward check), GitPushError (the server refused a ref, e.g. a pre-receive hook),
   * HttpError (401...), or a Node system error (ECONNREFUSED...).
   */
  async push(opts: { force?: boolean } = {}): Promise<PushResult> {
    const messages: string[] = [];
    this.lastPushMessages = messages;
    return git.push({
      fs,
      http,
      dir: this.dir,
      remote: 'origin',
      ref: this.branch,
      force: opts.force ?? false,
      onAuth: onAuthFor(this.auth),
      onMessage: (m) => {
        messages.push(m.trimEnd());
      },
    });
  }

  /** Move the branch, index and working tree to a commit (`git reset --hard <sha>`); push with force to rewrite the remote. */
  async resetHard(sha: string): Promise<void> {
    await git.writeRef({ fs, dir: this.dir, ref: `refs/heads/${this.branch}`, value: sha, force: true });
    await git.checkout({ fs, dir: this.dir, ref: this.branch, force: true });
  }

  /** Fetch, then move the branch, index and working tree to origin's branch (any local commit is dropped). */
  async pull(): Promise<string> {
    await git.fetch({ fs, http, dir: this.dir, remote: 'origin', ref: this.branch, singleBranch: true, onAuth: onAuthFor(this.auth) });
    const remote = await git.resolveRef({ fs, dir: this.dir, ref: `refs/remotes/origin/${this.branch}` });
    await git.writeRef({ fs, dir: this.dir, ref: `refs/heads/${this.branch}`, value: remote, force: true });
    await git.checkout({ fs, dir: this.dir, ref: this.branch, force: true });
    return remote;
  }

  /** Newest first. */
  async log(depth?: number): Promise<LogEntry[]> {
    const entries = await git.log({ fs, dir: this.dir, ref: this.branch, ...(depth === undefined ? {} : { depth }) });
    return entries.map(({ oid, commit }) => ({ sha: oid, ...splitMessage(commit.message), author: commit.author, parents: commit.parent }));
  }

  headSha(): Promise<string> {
    return git.resolveRef({ fs, dir: this.dir, ref: 'HEAD' });
  }

  /**
   * What `git revert SHA` does to a commit with one parent when no later commit touched the
   * same files: put every file it changed back to its parent's content (or remove it), and
   * commit `Revert "<subject>"` with body `This reverts commit <sha>.` No three-way merge
   * (later changes to those files are overwritten) and no file <-> directory changes.
   */
  async revert(sha: string, opts: { author?: GitAuthor } = {}): Promise<string> {
    const { commit } = await git.readCommit({ fs, dir: this.dir, oid: sha });
    const parent = commit.parent[0];
    if (parent === undefined || commit.parent.length > 1) throw new Error(`revert: ${sha} is not a commit with one parent`);
    const changed = await git.walk({
      fs,
      dir: this.dir,
      trees: [git.TREE({ ref: parent }), git.TREE({ ref: sha })],
      // files only: walk() recurses into directories by itself
      map: async (path, [before, after]) => {
        if ((await before?.type()) === 'tree' || (await after?.type()) === 'tree') return undefined;
        return (await before?.oid()) === (await after?.oid()) ? undefined : path;
      },
    });
    for (const path of changed as string[]) {
      const old = await readBlobOrUndefined(this.dir, parent, path);
      if (old === undefined) await this.remove(path);
      else await this.write(path, old);
    }
    const { subject } = splitMessage(commit.message);
    return this.commit(`Revert "${subject}"\n\nThis reverts commit ${sha}.\n`, opts);
  }

  cleanup(): void {
    removeGitTempDir(this.dir);
  }
}

/** A file's content in a commit, undefined if the commit does not have it. */
async function readBlobOrUndefined(dir: string, oid: string, filepath: string): Promise<string | undefined> {
  try {
    const { blob } = await git.readBlob({ fs, dir, oid, filepath });
    return Buffer.from(blob).toString('utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFoundError') return undefined;
    throw err;
  }
}

function splitMessage(message: string): { subject: string; body: string } {
  const [subject = '', ...rest] = message.split('\n');
  return { subject, body: rest.join('\n').replace(/^\n+/, '').replace(/\n+$/, '') };
}

/**
 * Content of `path` on `branch` as a FRESH clone sees it (nothing cached from a workspace),
 * or undefined when the file is not there. Fetches only the branch tip (depth 1, no checkout).
 */
export async function readFileAtHead(url: string, auth: GitAuth, path: string, branch = 'main'): Promise<string | undefined> {
  const dir = gitTempDir('gaws');
  try {
    await git.clone({ fs, http, dir, url, ref: branch, singleBranch: true, depth: 1, noCheckout: true, onAuth: onAuthFor(auth) });
    const oid = await git.resolveRef({ fs, dir, ref: `refs/heads/${branch}` });
    return await readBlobOrUndefined(dir, oid, path);
  } finally {
    removeGitTempDir(dir);
  }
}
