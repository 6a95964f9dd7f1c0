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
  /** Desired-state files the source found and did not read (symbolic links): the loader refuses them by name. */
  refusedFiles?: { path: string; why: string }[];
  /** Set when commit signatures are verified and the commit's is refused. */
  signatureRefused?: string;
}

