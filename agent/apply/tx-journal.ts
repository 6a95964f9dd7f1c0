/** The parts of a journal a phase needs, or STATE_CORRUPT when a journal lacks one. */
import { AgentError } from '../core/errors.js';
import { asContainerId, type ContainerId } from '../core/ids.js';
import type { Journal, JournalNew, JournalOld } from '../model/journal.js';

export function mustOld(j: Journal): JournalOld {
  if (!j.old) throw new AgentError('STATE_CORRUPT', `transaction ${j.txId} of ${j.service} has no previous container at ${j.phase}`, { data: { txId: j.txId, phase: j.phase } });
  return j.old;
}

export function mustNew(j: Journal): JournalNew {
  if (!j.new) throw new AgentError('STATE_CORRUPT', `transaction ${j.txId} of ${j.service} has no target at ${j.phase}`, { data: { txId: j.txId, phase: j.phase } });
  return j.new;
}

export function newContainerId(j: Journal): ContainerId {
  const id = mustNew(j).containerId;
  if (!id) throw new AgentError('STATE_CORRUPT', `transaction ${j.txId} has no new container at ${j.phase}`, { data: { txId: j.txId, phase: j.phase } });
  return asContainerId(id);
}
