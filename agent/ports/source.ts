import type { SourceSnapshot } from '../model/source.js';
import type { ProjectAtRevision } from './project-files.js';

/** Where the desired state comes from: a local directory, or a Git repository. */
export interface DesiredSource {
  readonly kind: 'dir' | 'git';
  /** For people: a path or a URL with credentials redacted. */
  readonly location: string;
  /** Git: the tracked branch and the path of the desired state in the repository. */
  readonly branch?: string;
  readonly path?: string;
  read(signal?: AbortSignal): Promise<SourceSnapshot>;
  /** The project directory at a revision (Git: that commit; a directory: as it is now), for copying the files the desired state binds. */
  project(revision: string): Promise<ProjectAtRevision>;
  /** Git: the branch's tip on the server, asked without fetching (status shows a commit the agent has not fetched yet). */
  remoteRevision?(signal?: AbortSignal): Promise<string | undefined>;
  /** Calls back when the source may have changed; returns a function that stops watching. */
  watch?(onChange: () => void): Promise<() => Promise<void>>;
}
