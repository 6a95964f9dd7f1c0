/** A commit as the agent reads it. */
export interface CommitInfo {
  sha: string;
  subject: string;
  body: string;
  author: string;
  /** ISO time of the author date. */
  time: string;
  parents: string[];
}

export interface Identity {
  name: string;
  email: string;
}

export type PushResult = { ok: true } | { ok: false; kind: 'non-fast-forward' | 'refused' | 'auth'; reason: string };

/** Signs a commit payload; returns an armored detached signature. */
export type CommitSigner = (payload: string) => Promise<string>;

/**
 * The desired-state repository as the agent reads it: its own copy of the tracked branch.
 * `fetch` refreshes that copy (it changes nothing anyone else sees); everything else reads.
 * Read-only commands (`status`) get this port and nothing more.
 */
/** A file's new content in a commit (with its executable bit), or `null`: the file is removed. */
export type FileChange = string | Buffer | { content: Buffer; executable: boolean } | null;

export interface GitReader {
  /** For people and errors: the repository URL without credentials. */
  readonly location: string;
  readonly branch: string;
  /** Fetches the tracked branch; returns its tip. SOURCE_UNAVAILABLE or SOURCE_AUTH_FAILED when it cannot. */
  fetch(signal?: AbortSignal): Promise<string>;
  /** The tip of the last successful fetch; undefined before the first. */
  lastFetched(): Promise<string | undefined>;
  /** The last commit whose signatures (and those of every commit before it) were verified; kept in the local mirror. */
  trustedBase(): Promise<string | undefined>;
  /** undefined: forgotten (verification was turned off; turned on again, it starts from the tip then). */
  setTrustedBase(sha: string | undefined): Promise<void>;
  /** The branch's tip on the server, asked without fetching anything (`git ls-remote`). */
  remoteTip(signal?: AbortSignal): Promise<string | undefined>;
  commitInfo(sha: string): Promise<CommitInfo>;
  /** The raw commit and its signature, for verification. */
  signedPayload(sha: string): Promise<{ payload: string; signature?: string }>;
  /** Regular files directly in `dir` at a commit ('' for the root); `symlinks` lists the symbolic links there, which are never read. */
  listFiles(sha: string, dir: string): Promise<{ path: string; oid: string }[]>;
  /** Symbolic links directly in `dir` at a commit: named in errors, never followed. */
  listSymlinks(sha: string, dir: string): Promise<string[]>;
  readBlob(oid: string): Promise<Buffer>;
  /** Every entry under `dir` at a commit, recursively, at most `limit` (paths relative to `dir`); `truncated` when there were more. */
  walkTree(sha: string, dir: string, limit: number): Promise<{ entries: { path: string; type: 'blob' | 'tree'; mode: string; oid: string }[]; truncated: boolean }>;
  /** Content of a file at a commit; undefined when it does not exist there. */
  readFile(sha: string, filepath: string): Promise<string | undefined>;
  /** First-parent history from `sha`, newest first, at most `depth` commits. */
  log(sha: string, depth: number): Promise<CommitInfo[]>;
}

/**
 * The repository as the agent writes it back: revert commits after a rollback. Only `agent run`
 * and `agent apply` get this port, with the commit-signing key.
 */
export interface GitPort extends GitReader {
  /** A new commit on top of `parent` with some files replaced (path -> content); the branch is not moved. */
  commitFiles(parent: string, files: Record<string, FileChange>, message: string, identity: Identity, sign?: CommitSigner): Promise<string>;
  /** Pushes `sha` to the tracked branch, fast-forward only. Refusals are results; an unreachable server throws SOURCE_UNAVAILABLE. */
  push(sha: string): Promise<PushResult>;
}
