import { AgentError } from '../../../agent/core/errors.js';
import type { TxBackup } from '../../../agent/ports/tx-backup.js';
import type { JournalBackup } from '../../../agent/model/journal.js';

/**
 * A backup step that records what it was asked to do, in order, and fails on demand: for
 * unit tests of the transaction's backup and data-restore phases.
 */
export class FakeTxBackup implements TxBackup {
  readonly calls: string[] = [];
  failBegin?: AgentError;
  failComplete?: AgentError;
  failRestoreFiles?: AgentError;
  failCommit?: AgentError;
  /** Called as the manifest is committed (to see what had happened by then). */
  onCommit?: () => void;
  constructor(
    private readonly restoreOnRollback: boolean,
    private readonly dumpOfOtherService = true,
  ) {}

  async begin(): Promise<JournalBackup> {
    this.calls.push('begin');
    if (this.failBegin) throw this.failBegin;
    return {
      id: 'b1',
      startedAt: '2026-01-01T00:00:00Z',
      artifacts: [{ file: 'postgres.dump', kind: 'postgres-dump', bytes: 1, sha256: 'x', compression: 'none', dbService: this.dumpOfOtherService ? 'db' : 'web' }],
      complete: false,
      restoreOnRollback: this.restoreOnRollback,
    };
  }

  async complete(): Promise<void> {
    this.calls.push('complete');
    if (this.failComplete) throw this.failComplete;
  }

  async commit(): Promise<void> {
    this.calls.push('commit');
    this.onCommit?.();
    if (this.failCommit) throw this.failCommit;
  }

  async restoreFiles(): Promise<void> {
    this.calls.push('restoreFiles');
    if (this.failRestoreFiles) throw this.failRestoreFiles;
  }

  needsDatabaseRestore(): boolean {
    return this.dumpOfOtherService;
  }

  async restoreDatabase(): Promise<void> {
    this.calls.push('restoreDatabase');
  }
}

export const backupFailure = (message: string) => new AgentError('BACKUP_FAILED', message);
