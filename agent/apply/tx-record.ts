/**
 * What a finished transaction amounts to: its result, whether the version is held, and the
 * record the history and `agent status` show (reason in words, downtime, backup).
 */
import { isoTime } from '../core/clock.js';
import { classOf } from '../core/errors.js';
import { PRE_CHANGE_PHASES, isStartFirst, type Journal, type TxResult } from '../model/journal.js';
import type { TransactionRecord } from '../model/records.js';
import { downtimeMs } from './downtime.js';
import type { TxDeps } from './types.js';

/** A rollback puts the data back too: the backup of this transaction is complete and asked for. */
export function restoringData(j: Journal): boolean {
  // Start-first: the old container kept writing beside the new one; its data is not put back.
  return !!j.backup?.complete && j.backup.restoreOnRollback && j.failure?.phase !== 'backup-files' && !isStartFirst(j);
}

export function resultOf(j: Journal): TxResult {
  if (!j.failure) return 'succeeded';
  if (j.rollbackFailure !== undefined) return 'rollback-failed';
  const changedNothing = PRE_CHANGE_PHASES.includes(j.failure.phase) || j.failure.phase === 'backup-files';
  return j.old && !changedNothing && j.kind !== 'remove' ? 'rolled-back' : 'failed';
}

/**
 * A version is held only when it failed on its own account, a terminal error (the health gate,
 * a create the engine refuses), never for a transient one (an outage, a full backup disk), and
 * never a repair's: its target is the version that ran before, not the one asked for.
 */
export function shouldHold(j: Journal, result: TxResult): boolean {
  if (result === 'succeeded' || result === 'interrupted' || !j.failure || j.kind === 'remove' || j.repair) return false;
  return (j.failure.errorClass ?? classOf(j.failure.code)) === 'terminal';
}

export function toRecord(deps: Pick<TxDeps, 'clock'>, j: Journal, result: TxResult, recovered: boolean): TransactionRecord {
  const rec: TransactionRecord = { txId: j.txId, service: j.service, kind: j.kind, result, revision: j.revision, startedAt: j.startedAt, finishedAt: isoTime(deps.clock) };
  if (j.old) rec.from = j.old.image;
  if (j.new) rec.to = j.new.image;
  if (recovered) rec.recovered = true;
  if (j.reload) rec.reloaded = true;
  if (j.backup?.complete) rec.backup = j.backup.id;
  const down = downtimeMs(j.trail);
  if (down !== undefined) rec.downtimeMs = down;
  if (j.failure) {
    rec.code = j.failure.code;
    rec.failedPhase = j.failure.phase;
    if (j.failure.gate) rec.gate = j.failure.gate;
    if (j.failure.logs) rec.logs = j.failure.logs;
  }
  rec.reason = describeResult(j, result);
  return rec;
}

function describeResult(j: Journal, result: TxResult): string | undefined {
  const why = j.failure ? `${j.failure.phase === 'health-gate' ? '' : `${j.failure.phase}: `}${j.failure.message}` : '';
  switch (result) {
    case 'succeeded':
      return undefined;
    case 'interrupted':
      return `interrupted during ${j.phase}; nothing had changed, the update will be planned again`;
    case 'rolled-back':
      return `rolled back${restoringData(j) ? ` (data restored from backup ${j.backup?.id})` : ''}: ${why}`;
    case 'rollback-failed':
      return `rollback failed: ${j.rollbackFailure}; the update had failed: ${why}`;
    case 'failed':
      return j.failure?.phase === 'backup-files' || j.failure?.phase === 'backup' ? `backup failed, update aborted, nothing changed: ${j.failure.message}` : `failed: ${why}`;
  }
}
