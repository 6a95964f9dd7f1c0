import type { TransactionOutcome } from '../apply/transaction.js';
import type { AppliedRecord } from '../model/records.js';
import type { RevertRequest } from '../model/revert.js';

const COMMIT_SHA = /^[0-9a-f]{40}$/;

/**
 * The revert to write back to Git for an outcome: an update that failed and is held, of a
 * service with a previous spec applied from a commit. Undefined otherwise (a first deploy, a
 * directory source, a transient failure, a repair).
 */
export function revertRequestOf(o: TransactionOutcome, good: AppliedRecord | undefined): RevertRequest | undefined {
  const n = o.journal.new;
  if (!o.held || !n || !['rolled-back', 'rollback-failed', 'failed'].includes(o.record.result)) return undefined;
  if (!good || !COMMIT_SHA.test(good.revision) || !COMMIT_SHA.test(o.journal.revision)) return undefined;
  const request: RevertRequest = {
    service: o.journal.service,
    failedHash: n.hash,
    failedImage: n.image,
    failedRevision: o.journal.revision,
    goodImage: good.spec.image,
    goodRevision: good.revision,
    reason: o.record.reason ?? o.record.result,
    at: o.record.finishedAt,
  };
  if (o.record.logs) request.logs = o.record.logs;
  return request;
}
