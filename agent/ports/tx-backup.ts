import type { Journal, JournalBackup } from '../model/journal.js';

/**
 * The backup steps of an update transaction. `begin` runs before anything changes (the old
 * version still serving): it checks the store and takes the database dump; throwing aborts
 * the update with nothing changed. `complete` runs with the old container stopped: it archives
 * volumes and paths. `commit` writes the manifest, once the new container has started (out of
 * the downtime window) or as the rollback begins: until then the journal holds what the
 * backup is. The restores run during a rollback when the new version may have changed data.
 */
export interface TxBackup {
  begin(j: Journal, signal?: AbortSignal): Promise<JournalBackup | undefined>;
  complete(j: Journal, backup: JournalBackup, signal?: AbortSignal): Promise<void>;
  /** Writes the manifest: the backup is listed and restorable by `agent restore`. Idempotent. */
  commit(j: Journal, backup: JournalBackup): Promise<void>;
  /** Into the stopped old container: its volumes and paths. */
  restoreFiles(j: Journal, backup: JournalBackup): Promise<void>;
  /** Whether `restoreDatabase` has work to do (a dump of another service's database, or of this one without its volume). */
  needsDatabaseRestore(j: Journal, backup: JournalBackup): boolean;
  /** With the old version running again: the database dump. */
  restoreDatabase(j: Journal, backup: JournalBackup): Promise<void>;
}

/** For services without `x-agent.backup`, and for tests: nothing to back up. */
export const noBackup: TxBackup = {
  begin: async () => undefined,
  complete: async () => undefined,
  commit: async () => undefined,
  restoreFiles: async () => undefined,
  needsDatabaseRestore: () => false,
  restoreDatabase: async () => undefined,
};

