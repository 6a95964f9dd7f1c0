import * as fs from 'node:fs';
import { deflateSync } from 'node:zlib';
import git, { Errors } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { CommitInfo, CommitSigner, FileChange, GitPort, Identity, PushResult } from '../../ports/git.js';
import type { GitCredentials } from './credentials.js';
import { redactUrl } from './credentials.js';

/**
 * The agent's private copy of the desired-state repository: a bare git directory under the
 * state directory, fetched over HTTP(S) with isomorphic-git. No working tree: files are read
 * from commits and commits are written from trees, so nothing on disk can drift from Git.
 */
export class GitRepo implements GitPort {
  constructor(
    readonly gitdir: string,
    readonly url: string,
    readonly branch: string,
    private readonly credentials: GitCredentials | undefined,
  ) {}

  get location(): string {
    return redactUrl(this.url);
  }

  private get remoteRef(): string {
    return `refs/remotes/origin/${this.branch}`;
  }

  /**
   * The server asked for credentials (401): with none configured isomorphic-git is told to
   * cancel, with refused ones likewise. Either way it throws "The operation was canceled", so
   * what happened is remembered here and reported in words.
   */
  private authCallbacks(what: 'fetch' | 'push') {
    const seen: { refused?: 'no-credentials' | 'refused' } = {};
    return {
      seen,
      onAuth: () => {
        if (this.credentials) return { username: this.credentials.username, password: this.credentials.password };
        seen.refused = 'no-credentials';
        return { cancel: true };
      },
      onAuthFailure: () => {
        seen.refused = 'refused';
        return { cancel: true };
      },
      error: (): AgentError | undefined => {
        if (!seen.refused) return undefined;
        const why = seen.refused === 'refused' ? `the server refused the credentials of ${this.credentials?.username ?? '?'} (HTTP 401)` : 'the server asks for credentials (HTTP 401) and none are configured (git.auth, AGENT_GIT_USERNAME)';
        return new AgentError('SOURCE_AUTH_FAILED', `${what} ${this.location}: ${why}`, { data: { url: this.location, username: this.credentials?.username } });
      },
    };
  }

  private initialised = false;

  async init(): Promise<void> {
    if (this.initialised) return;
    if (!fs.existsSync(`${this.gitdir}/HEAD`)) await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
    // The remote's URL follows the configuration (it may have changed since the last run).
    await git.addRemote({ fs, gitdir: this.gitdir, remote: 'origin', url: this.url, force: true });
    this.initialised = true;
  }

  /** Fetches the tracked branch; returns its tip. SOURCE_UNAVAILABLE when the server cannot be reached or refuses. */
  async fetch(signal?: AbortSignal): Promise<string> {
    await this.init();
    if (signal?.aborted) throw new AgentError('ABORTED', 'fetch aborted');
    const auth = this.authCallbacks('fetch');
    try {
      const r = await git.fetch({ fs, http, gitdir: this.gitdir, remote: 'origin', ref: this.branch, remoteRef: this.branch, singleBranch: true, tags: false, onAuth: auth.onAuth, onAuthFailure: auth.onAuthFailure });
      if (!r.fetchHead) throw new AgentError('SOURCE_UNAVAILABLE', `branch ${this.branch} not found in the repository`);
      await git.writeRef({ fs, gitdir: this.gitdir, ref: this.remoteRef, value: r.fetchHead, force: true });
      await this.unpackPacks().catch(() => undefined); // the packs stay readable; the next fetch tries again
      return r.fetchHead;
    } catch (err) {
      if (err instanceof AgentError) throw err;
      const refused = auth.error();
      if (refused) throw refused;
      throw new AgentError('SOURCE_UNAVAILABLE', `fetch ${this.location} failed: ${describeGitError(err)}`, { cause: err, data: { url: this.location } });
    }
  }

  /**
   * Moves the objects of every pack into loose objects, then deletes the pack. isomorphic-git
   * writes one pack per fetch and, to find an object, parses the index of each pack in turn
   * (again for every object read): with a pack per commit fetched, every pass grew slower and
   * churned more memory (the soak run: docs/soak.md). A loose object is found by its name. The
   * pack goes only once all its objects are written (each to a temporary file, then renamed).
   */
  private async unpackPacks(): Promise<void> {
    const dir = `${this.gitdir}/objects/pack`;
    const packs = (await fs.promises.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.idx'));
    const cache = {};
    for (const idx of packs) {
      const pack = idx.replace(/\.idx$/, '.pack');
      const { oids } = await git.indexPack({ fs, dir: this.gitdir, gitdir: this.gitdir, filepath: `objects/pack/${pack}`, cache });
      for (const oid of oids) {
        const file = `${this.gitdir}/objects/${oid.slice(0, 2)}/${oid.slice(2)}`;
        if (fs.existsSync(file)) continue;
        const { type, object } = await git.readObject({ fs, gitdir: this.gitdir, oid, format: 'content', cache });
        const body = Buffer.from(object as Uint8Array);
        await fs.promises.mkdir(`${this.gitdir}/objects/${oid.slice(0, 2)}`, { recursive: true });
        await fs.promises.writeFile(`${file}.tmp`, deflateSync(Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body])));
        await fs.promises.rename(`${file}.tmp`, file);
      }
      await fs.promises.rm(`${dir}/${idx}`);
      await fs.promises.rm(`${dir}/${pack}`);
    }
  }

  async remoteTip(signal?: AbortSignal): Promise<string | undefined> {
    if (signal?.aborted) throw new AgentError('ABORTED', 'ls-remote aborted');
    const auth = this.authCallbacks('fetch');
    try {
      const refs = await git.listServerRefs({ http, url: this.url, prefix: `refs/heads/${this.branch}`, onAuth: auth.onAuth, onAuthFailure: auth.onAuthFailure });
      return refs.find((r) => r.ref === `refs/heads/${this.branch}`)?.oid;
    } catch (err) {
      const refused = auth.error();
      if (refused) throw refused;
      throw new AgentError('SOURCE_UNAVAILABLE', `ls-remote ${this.location} failed: ${describeGitError(err)}`, { cause: err, data: { url: this.location } });
    }
  }

  /** The last fetched tip, if any fetch ever succeeded. */
  async lastFetched(): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs, gitdir: this.gitdir, ref: this.remoteRef });
    } catch {
      return undefined;
    }
  }

  /** Per branch: a branch switched in the configuration starts from its own verified commit. */
  private get trustedRef(): string {
    return `refs/gitops-agent/verified/${this.branch}`;
  }

  async trustedBase(): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs, gitdir: this.gitdir, ref: this.trustedRef });
    } catch {
      return undefined;
    }
  }

  async setTrustedBase(sha: string | undefined): Promise<void> {
    if (sha === undefined) await git.deleteRef({ fs, gitdir: this.gitdir, ref: this.trustedRef }).catch(() => undefined);
    else await git.writeRef({ fs, gitdir: this.gitdir, ref: this.trustedRef, value: sha, force: true });
  }

  async commitInfo(sha: string): Promise<CommitInfo> {
    const { commit } = await git.readCommit({ fs, gitdir: this.gitdir, oid: sha });
    const [subject, ...rest] = commit.message.split('\n');
    return {
      sha,
      subject: subject ?? '',
      body: rest.join('\n').trim(),
      author: `${commit.author.name} <${commit.author.email}>`,
      time: new Date(commit.author.timestamp * 1000).toISOString(),
      parents: commit.parent,
    };
  }

  /** The raw commit and its signature, for verification. */
  async signedPayload(sha: string): Promise<{ payload: string; signature?: string }> {
    const r = await git.readCommit({ fs, gitdir: this.gitdir, oid: sha });
    return r.commit.gpgsig ? { payload: r.payload, signature: r.commit.gpgsig } : { payload: r.payload };
  }

  async listFiles(sha: string, dir: string): Promise<{ path: string; oid: string }[]> {
    return (await this.treeEntries(sha, dir)).filter((e) => e.type === 'blob' && e.mode !== '120000').map((e) => ({ path: e.path, oid: e.oid }));
  }

  async listSymlinks(sha: string, dir: string): Promise<string[]> {
    return (await this.treeEntries(sha, dir)).filter((e) => e.type === 'blob' && e.mode === '120000').map((e) => e.path);
  }

  private async treeEntries(sha: string, dir: string) {
    try {
      return (await git.readTree({ fs, gitdir: this.gitdir, oid: sha, filepath: dir || undefined })).tree;
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return [];
      throw readError(`read the tree of ${dir || '/'} at ${sha.slice(0, 12)}`, err);
    }
  }

  async walkTree(sha: string, dir: string, limit: number): Promise<{ entries: { path: string; type: 'blob' | 'tree'; mode: string; oid: string }[]; truncated: boolean }> {
    const entries: { path: string; type: 'blob' | 'tree'; mode: string; oid: string }[] = [];
    const visit = async (oid: string, prefix: string): Promise<boolean> => {
      const { tree } = await git.readTree({ fs, gitdir: this.gitdir, oid });
      for (const e of tree) {
        if (e.type === 'commit') continue; // a submodule: not part of this repository's content
        if (entries.length >= limit) return false;
        const path = prefix ? `${prefix}/${e.path}` : e.path;
        entries.push({ path, type: e.type, mode: e.mode, oid: e.oid });
        if (e.type === 'tree' && !(await visit(e.oid, path))) return false;
      }
      return true;
    };
    try {
      const { oid } = await git.readTree({ fs, gitdir: this.gitdir, oid: sha, filepath: dir || undefined });
      const complete = await visit(oid, '');
      return { entries, truncated: !complete };
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return { entries: [], truncated: false };
      throw readError(`read the tree of ${dir || '/'} at ${sha.slice(0, 12)}`, err);
    }
  }

  async readBlob(oid: string): Promise<Buffer> {
    const { blob } = await git.readBlob({ fs, gitdir: this.gitdir, oid });
    return Buffer.from(blob);
  }

  /** Content of a file at a commit, undefined when it does not exist there. */
  async readFile(sha: string, filepath: string): Promise<string | undefined> {
    try {
      const { blob } = await git.readBlob({ fs, gitdir: this.gitdir, oid: sha, filepath });
      return Buffer.from(blob).toString('utf8');
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return undefined;
      throw readError(`read ${filepath} at ${sha.slice(0, 12)}`, err);
    }
  }

  /** First-parent history from `sha`, newest first, at most `depth` commits. */
  async log(sha: string, depth: number): Promise<CommitInfo[]> {
    const entries = await git.log({ fs, gitdir: this.gitdir, ref: sha, depth });
    return entries.map((e) => {
      const [subject, ...rest] = e.commit.message.split('\n');
      return { sha: e.oid, subject: subject ?? '', body: rest.join('\n').trim(), author: `${e.commit.author.name} <${e.commit.author.email}>`, time: new Date(e.commit.author.timestamp * 1000).toISOString(), parents: e.commit.parent };
    });
  }

  /**
   * A new commit on top of `parent` with some files replaced (path -> content), written from
   * trees: no working tree, no index. Returns its sha; the branch is not moved.
   */
  async commitFiles(parent: string, files: Record<string, FileChange>, message: string, identity: Identity, sign?: CommitSigner): Promise<string> {
    const { commit } = await git.readCommit({ fs, gitdir: this.gitdir, oid: parent });
    const tree = await this.replaceInTree(commit.tree, Object.entries(files).map(([p, c]) => [p.split('/'), c] as const));
    const now = Math.floor(Date.now() / 1000);
    const who = { name: identity.name, email: identity.email, timestamp: now, timezoneOffset: 0 };
    return git.commit({
      fs,
      gitdir: this.gitdir,
      message,
      author: who,
      committer: who,
      parent: [parent],
      tree,
      noUpdateBranch: true,
      ...(sign ? { signingKey: 'configured', onSign: async ({ payload }: { payload: string }) => ({ signature: await sign(payload) }) } : {}),
    });
  }

  private async replaceInTree(treeOid: string, changes: (readonly [string[], FileChange])[]): Promise<string> {
    const { tree } = await git.readTree({ fs, gitdir: this.gitdir, oid: treeOid });
    const entries = [...tree];
    const byHead = new Map<string, (readonly [string[], FileChange])[]>();
    for (const [parts, content] of changes) {
      const [head, ...rest] = parts as [string, ...string[]];
      if (rest.length === 0) {
        const i = entries.findIndex((e) => e.path === head);
        if (content === null) {
          if (i >= 0) entries.splice(i, 1);
          continue;
        }
        const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.isBuffer(content) ? content : content.content;
        const oid = await git.writeBlob({ fs, gitdir: this.gitdir, blob: bytes });
        const executable = typeof content === 'object' && !Buffer.isBuffer(content) && content.executable;
        const entry = { mode: executable ? '100755' : '100644', path: head, oid, type: 'blob' as const };
        if (i >= 0) entries[i] = entry;
        else entries.push(entry);
      } else {
        byHead.set(head, [...(byHead.get(head) ?? []), [rest, content] as const]);
      }
    }
    for (const [head, sub] of byHead) {
      const i = entries.findIndex((e) => e.path === head && e.type === 'tree');
      const base = i >= 0 ? (entries[i] as { oid: string }).oid : await git.writeTree({ fs, gitdir: this.gitdir, tree: [] });
      const oid = await this.replaceInTree(base, sub);
      const emptied = (await git.readTree({ fs, gitdir: this.gitdir, oid })).tree.length === 0;
      const entry = { mode: '040000', path: head, oid, type: 'tree' as const };
      // Git has no empty folders: one whose last file went goes too.
      if (emptied) {
        if (i >= 0) entries.splice(i, 1);
      } else if (i >= 0) entries[i] = entry;
      else entries.push(entry);
    }
    return git.writeTree({ fs, gitdir: this.gitdir, tree: entries });
  }

  /** Pushes `sha` to the tracked branch (fast-forward only). */
  async push(sha: string): Promise<PushResult> {
    const local = `refs/heads/${this.branch}`;
    await git.writeRef({ fs, gitdir: this.gitdir, ref: local, value: sha, force: true });
    const auth = this.authCallbacks('push');
    try {
      const r = await git.push({ fs, http, gitdir: this.gitdir, url: this.url, ref: local, remoteRef: local, onAuth: auth.onAuth, onAuthFailure: auth.onAuthFailure });
      const refResult = r.refs?.[local];
      if (!r.ok || (refResult && !refResult.ok)) return { ok: false, kind: 'refused', reason: refResult?.error ?? r.error ?? 'refused by the server' };
      await git.writeRef({ fs, gitdir: this.gitdir, ref: this.remoteRef, value: sha, force: true });
      return { ok: true };
    } catch (err) {
      if (err instanceof Errors.PushRejectedError) return { ok: false, kind: 'non-fast-forward', reason: describeGitError(err) };
      const refused = auth.error();
      if (refused) return { ok: false, kind: 'auth', reason: refused.message };
      if (err instanceof Errors.HttpError && [401, 403].includes((err.data as { statusCode?: number }).statusCode ?? 0)) return { ok: false, kind: 'auth', reason: describeGitError(err) };
      if (err instanceof Errors.GitPushError) return { ok: false, kind: 'refused', reason: describeGitError(err) };
      throw new AgentError('SOURCE_UNAVAILABLE', `push to ${this.location} failed: ${describeGitError(err)}`, { cause: err, data: { url: this.location } });
    }
  }
}

/** The agent's copy of the repository could not be read (damaged, or a disk error): transient, the next fetch may repair it. */
function readError(what: string, err: unknown): AgentError {
  return new AgentError('SOURCE_UNAVAILABLE', `cannot ${what} in the agent's copy of the repository: ${describeGitError(err)}`, { cause: err });
}

/** A one-line description of an isomorphic-git or network error, without credentials. */
export function describeGitError(err: unknown): string {
  const e = err as { code?: string; data?: Record<string, unknown>; cause?: { code?: string } };
  if (e?.code === 'HttpError') return `HTTP ${String(e.data?.statusCode)} ${String(e.data?.statusMessage ?? '')}`.trim();
  if (e?.code === 'GitPushError') {
    const details = (e.data?.prettyDetails as string | undefined) ?? JSON.stringify(e.data?.result ?? {});
    return `push refused by the server: ${details.replace(/\s+/g, ' ').trim().slice(0, 500)}`;
  }
  if (e?.code === 'PushRejectedError') return `push rejected: ${String(e.data?.reason ?? 'not a fast-forward')}`;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && /^E[A-Z]+$/.test(code)) return `${code} (${errorMessage(err).replace(/https?:\/\/[^\s]*/g, (u) => u.replace(/\/\/[^/@]*@/, '//***@'))})`;
  return errorMessage(err).replace(/\/\/[^/@\s]*@/g, '//***@');
}
