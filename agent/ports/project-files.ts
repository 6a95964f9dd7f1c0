import { AgentError } from '../core/errors.js';
import type { Mount } from '../model/desired.js';
import type { ProjectEntry, ProjectTree } from '../model/source.js';

/** The project directory at a revision, as the source holds it: its entries, and how to read a file's bytes. */
export interface ProjectAtRevision {
  tree: ProjectTree;
  read(entry: ProjectEntry): Promise<Buffer>;
}

/**
 * The host side of a spec's repository files: their immutable copies and the stack's data
 * directories, made before the container is created.
 */
export interface ProjectFilesPort {
  /** Makes every copy and data directory the mounts need exist; idempotent, and safe to resume after a crash. */
  prepare(mounts: readonly Mount[], revision: string, signal?: AbortSignal): Promise<void>;
  /** Removes the copies whose digest is not in `keep` (no spec that may run binds them); returns the digests removed. */
  prune(keep: ReadonlySet<string>): Promise<string[]>;
}

/** For specs without repository files (and tests): refuses any mount that needs them. */
export const noProjectFiles: ProjectFilesPort = {
  async prepare(mounts) {
    const needs = mounts.find((m) => m.project || m.dataDir);
    if (needs) throw new AgentError('CONTAINER_CREATE_FAILED', `no project files configured for ${needs.source}`);
  },
  async prune() {
    return [];
  },
};
