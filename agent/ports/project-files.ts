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
  /**
   * For a service reloaded in place (`x-agent.reload`): the folder its container binds instead of
   * the copy, `<files>/live/<key>/<target>`, made to hold the copy's content. `key` is the
   * transaction that creates the container: each container has folders of its own.
   */
  live(key: string, mount: Mount): Promise<string>;
  /** Makes a live folder hold the content of the copy `digest` (a reload, or its undoing); idempotent. */
  syncLive(path: string, digest: string): Promise<void>;
  /**
   * Removes the live folders of keys not in `keep` (containers that are gone); returns the keys
   * removed. `keep` is asked for only when there are live folders (it reads the engine).
   */
  pruneLive(keep: () => Promise<ReadonlySet<string>>): Promise<string[]>;
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
  async live(_key, mount) {
    throw new AgentError('CONTAINER_CREATE_FAILED', `no project files configured for ${mount.source}`);
  },
  async syncLive(path) {
    throw new AgentError('CONTAINER_CREATE_FAILED', `no project files configured for ${path}`);
  },
  async pruneLive() {
    return [];
  },
};
