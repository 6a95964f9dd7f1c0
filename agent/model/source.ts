import type { ErrorCode } from '../core/errors.js';
import type { Revision } from '../core/ids.js';

/** A file of the desired state, as read from its source. */
export interface SourceFile {
  /** Path shown to people: relative to the desired-state root. */
  path: string;
  content: string;
  /** Size on disk, when the content was not read because the file is too large. */
  bytes?: number;
}

/** A commit, as status and revert commits describe it. */
export interface CommitSummary {
  sha: string;
  subject: string;
  author: string;
  time: string;
}

/**
 * A file, directory or symbolic link of the project directory (the folder of the Compose files),
 * which relative binds, env_file, secrets and configs refer to.
 */
export interface ProjectEntry {
  /** Relative to the project directory, `/`-separated. */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  /** Files: the content's id (the Git blob id, or a SHA-256 for a directory source); links: their target. */
  id: string;
  size: number;
  executable?: boolean;
  /** The text of a small file, for env_file. */
  content?: string;
}

/** The entries of the project directory, bounded; `truncated` when there were more. */
export interface ProjectTree {
  entries: ProjectEntry[];
  truncated?: boolean;
}

export const PROJECT_TREE_LIMITS = { entries: 5000, contentBytes: 256 * 1024 } as const;

export interface SourceSnapshot {
  revision: Revision;
  files: SourceFile[];
  /** Git: the commit the files come from. */
  commit?: CommitSummary;
  /** Git: the last fetch failed; these files are from the last commit fetched successfully. */
  fetchError?: string;
  /** The code of that error (SOURCE_UNAVAILABLE, SOURCE_AUTH_FAILED...). */
  fetchErrorCode?: ErrorCode;
  /** Git: when this snapshot was fetched (the last successful fetch). */
  fetchedAt?: string;
  /** renovate.json at the same revision: where the agent's quarantine rules live. */
  renovateConfig?: { path: string; content: string };
  /** The project's `.env` beside the Compose files: variables for interpolation, under the agent's own. */
  dotEnv?: SourceFile;
  /** The project directory's files, for relative binds, env_file, secrets and configs. */
  tree?: ProjectTree;
  /** Desired-state files the source found and did not read (symbolic links): the loader refuses them by name. */
  refusedFiles?: { path: string; why: string }[];
  /** Set when commit signatures are verified and the commit's is refused. */
  signatureRefused?: string;
}

