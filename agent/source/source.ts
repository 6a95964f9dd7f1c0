import type { Revision } from '../core/ids.js';
import type { SourceFile } from '../desired/parse.js';

/** A commit, as status and revert commits describe it. */
export interface CommitSummary {
  sha: string;
  subject: string;
  author: string;
  time: string;
}

export interface SourceSnapshot {
  revision: Revision;
  files: SourceFile[];
  /** Git: the commit the files come from. */
  commit?: CommitSummary;
  /** Git: the last fetch failed; these files are from the last commit fetched successfully. */
  fetchError?: string;
  /** Git: when this snapshot was fetched (the last successful fetch). */
  fetchedAt?: string;
  /** renovate.json at the same revision: where the agent's quarantine rules live. */
  renovateConfig?: { path: string; content: string };
  /** Set when commit signatures are verified and the commit's is refused. */
  signatureRefused?: string;
}

/** Where the desired state comes from: a local directory, or a Git repository. */
export interface DesiredSource {
  readonly kind: 'dir' | 'git';
  /** For people: a path or a URL with credentials redacted. */
  readonly location: string;
  /** Git: the tracked branch and the path of the desired state in the repository. */
  readonly branch?: string;
  readonly path?: string;
  read(signal?: AbortSignal): Promise<SourceSnapshot>;
  /** Calls back when the source may have changed; returns a function that stops watching. */
  watch?(onChange: () => void): Promise<() => Promise<void>>;
}
