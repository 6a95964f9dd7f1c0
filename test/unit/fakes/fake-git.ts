import { createHash } from 'node:crypto';
import { AgentError } from '../../../agent/core/errors.js';
import type { CommitInfo, CommitSigner, FileChange, GitPort, Identity, PushResult } from '../../../agent/ports/git.js';

interface FakeCommit {
  sha: string;
  parents: string[];
  message: string;
  author: string;
  files: Map<string, string>;
}

/** A fault the next push meets. */
export type PushFault =
  /** Someone pushed `files` to the branch just before ours: our push is not a fast-forward. */
  | { kind: 'raced'; files: Record<string, string>; message: string }
  /** The server refuses the credentials (HTTP 401). */
  | { kind: 'auth' }
  /** The push lands, then the process dies before it learns so. */
  | { kind: 'crash-after-push' };

export class ProcessDied extends Error {}

/**
 * An in-memory Git server and the agent's copy of it, behind the GitPort: commits are maps of
 * path -> content; the branch is fast-forward only; faults are injected per push.
 */
export class FakeGit implements GitPort {
  readonly location = 'https://git.example/ops/desired.git';
  readonly branch = 'main';
  private readonly commits = new Map<string, FakeCommit>();
  private readonly blobs = new Map<string, string>();
  /** The server's branch tip, and the tip of the agent's last fetch. */
  tip = '';
  private fetched: string | undefined;
  readonly pushes: string[] = [];
  private faults: PushFault[] = [];
  private seq = 0;

  constructor(files: Record<string, string>, message = 'Initial desired state') {
    this.tip = this.addCommit([], files, message, 'Operator <ops@example.org>');
  }

  /** A commit on the server's branch, as a person or Renovate would push it. */
  serverCommit(files: Record<string, string>, message: string): string {
    this.tip = this.addCommit([this.tip], { ...Object.fromEntries(this.commitOf(this.tip).files), ...files }, message, 'Renovate <bot@example.org>');
    return this.tip;
  }

  failNextPush(fault: PushFault): void {
    this.faults.push(fault);
  }

  fileAt(sha: string, path: string): string | undefined {
    return this.commitOf(sha).files.get(path);
  }

  async fetch(): Promise<string> {
    this.fetched = this.tip;
    return this.tip;
  }

  async lastFetched(): Promise<string | undefined> {
    return this.fetched;
  }

  trusted: string | undefined;

  async trustedBase(): Promise<string | undefined> {
    return this.trusted;
  }

  async setTrustedBase(sha: string | undefined): Promise<void> {
    this.trusted = sha;
  }

  async remoteTip(): Promise<string> {
    return this.tip;
  }

  async commitInfo(sha: string): Promise<CommitInfo> {
    const c = this.commitOf(sha);
    const [subject, ...rest] = c.message.split('\n');
    return { sha, subject: subject ?? '', body: rest.join('\n').trim(), author: c.author, time: '2026-12-01T00:00:00.000Z', parents: c.parents };
  }

  async signedPayload(): Promise<{ payload: string }> {
    return { payload: '' };
  }

  async listFiles(sha: string, dir: string): Promise<{ path: string; oid: string }[]> {
    const prefix = dir ? `${dir}/` : '';
    return [...this.commitOf(sha).files.entries()]
      .filter(([p]) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/'))
      .map(([p, content]) => ({ path: p.slice(prefix.length), oid: this.blob(content) }));
  }

  async walkTree(sha: string, dir: string, limit: number): Promise<{ entries: { path: string; type: 'blob' | 'tree'; mode: string; oid: string }[]; truncated: boolean }> {
    const prefix = dir ? `${dir}/` : '';
    const entries: { path: string; type: 'blob' | 'tree'; mode: string; oid: string }[] = [];
    const dirs = new Set<string>();
    for (const [p, content] of [...this.commitOf(sha).files.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      if (!p.startsWith(prefix)) continue;
      const rel = p.slice(prefix.length);
      const parts = rel.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!dirs.has(d)) entries.push({ path: d, type: 'tree', mode: '040000', oid: '' });
        dirs.add(d);
      }
      entries.push({ path: rel, type: 'blob', mode: '100644', oid: this.blob(content) });
    }
    return { entries: entries.slice(0, limit), truncated: entries.length > limit };
  }

  async listSymlinks(): Promise<string[]> {
    return [];
  }

  async readBlob(oid: string): Promise<Buffer> {
    const content = this.blobs.get(oid);
    if (content === undefined) throw new AgentError('SOURCE_UNAVAILABLE', `no blob ${oid}`);
    return Buffer.from(content);
  }

  async readFile(sha: string, filepath: string): Promise<string | undefined> {
    return this.commitOf(sha).files.get(filepath);
  }

  async log(sha: string, depth: number): Promise<CommitInfo[]> {
    const out: CommitInfo[] = [];
    for (let cur: string | undefined = sha; cur && out.length < depth; cur = this.commitOf(cur).parents[0]) out.push(await this.commitInfo(cur));
    return out;
  }

  async commitFiles(parent: string, files: Record<string, FileChange>, message: string, identity: Identity, _sign?: CommitSigner): Promise<string> {
    const next: Record<string, string> = Object.fromEntries(this.commitOf(parent).files);
    for (const [p, c] of Object.entries(files)) {
      if (c === null) delete next[p];
      else next[p] = typeof c === 'string' || Buffer.isBuffer(c) ? c.toString() : c.content.toString();
    }
    return this.addCommit([parent], next, message, `${identity.name} <${identity.email}>`);
  }

  async push(sha: string): Promise<PushResult> {
    const fault = this.faults.shift();
    if (fault?.kind === 'auth') return { ok: false, kind: 'auth', reason: `push ${this.location}: the server refused the credentials of agent (HTTP 401)` };
    if (fault?.kind === 'raced') this.serverCommit(fault.files, fault.message);
    if (!this.isAncestor(this.tip, sha)) return { ok: false, kind: 'non-fast-forward', reason: 'push rejected: not a fast-forward' };
    this.tip = sha;
    this.pushes.push(sha);
    if (fault?.kind === 'crash-after-push') throw new ProcessDied('killed after the push');
    this.fetched = sha;
    return { ok: true };
  }

  private isAncestor(ancestor: string, of: string): boolean {
    for (let cur: string | undefined = of; cur; cur = this.commitOf(cur).parents[0]) if (cur === ancestor) return true;
    return false;
  }

  private addCommit(parents: string[], files: Record<string, string>, message: string, author: string): string {
    const sha = createHash('sha1').update(`${++this.seq}\0${message}`).digest('hex');
    this.commits.set(sha, { sha, parents, message, author, files: new Map(Object.entries(files)) });
    return sha;
  }

  private blob(content: string): string {
    const oid = createHash('sha1').update(content).digest('hex');
    this.blobs.set(oid, content);
    return oid;
  }

  private commitOf(sha: string): FakeCommit {
    const c = this.commits.get(sha);
    if (!c) throw new AgentError('SOURCE_UNAVAILABLE', `no commit ${sha}`);
    return c;
  }
}
