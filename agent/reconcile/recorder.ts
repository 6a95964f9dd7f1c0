import type { Logger } from 'pino';
import type { RecordOutcome } from '../apply/transaction.js';
import type { AgentState } from '../model/agent-state.js';
import type { StateStore } from '../state/store.js';

/**
 * The in-memory agent state and its file, changed one update at a time even when
 * transactions run in parallel: every change is saved before the next one starts.
 */
export class StateRecorder {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: StateStore,
    readonly state: AgentState,
  ) {}

  update(change: (state: AgentState) => void): Promise<void> {
    const next = this.chain.then(async () => {
      change(this.state);
      await this.store.save(this.state);
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/** Persists a transaction's outcome: last applied spec, held spec, history, status. Idempotent. */
export function recordOutcomes(store: StateStore, recorder: StateRecorder, log: Logger, redact: (text: string) => string = (t) => t): RecordOutcome {
  return async (outcome) => {
    const { hold, journal } = outcome;
    // Container output can echo its environment: secrets are cut before anything is written.
    const record = { ...outcome.record };
    if (record.reason) record.reason = redact(record.reason);
    if (record.logs) record.logs = redact(record.logs);
    outcome.record = record;
    const service = journal.service;
    if (record.result === 'succeeded' && journal.kind === 'remove') await store.removeApplied(service);
    else if (record.result === 'succeeded' && journal.new) {
      const n = journal.new;
      await store.saveApplied(service, { hash: n.hash, spec: n.spec, agent: n.agent, dependsOn: n.dependsOn, revision: journal.revision, at: record.finishedAt });
    }
    await store.appendHistory(record);
    await recorder.update((state) => {
      if (record.result === 'succeeded' && journal.kind === 'remove') {
        delete state.services[service];
        return;
      }
      const entry = (state.services[service] ??= {});
      entry.lastTransaction = record;
      delete entry.waiting;
      if (record.result === 'succeeded') delete entry.failed;
      if (hold && journal.new) entry.failed = { hash: journal.new.hash, image: journal.new.image, revision: journal.revision, reason: record.reason ?? record.result, at: record.finishedAt };
    });
    const fields = { service, tx: record.txId, result: record.result, from: record.from, to: record.to, reason: record.reason };
    if (record.result === 'succeeded') log.info(fields, 'Transaction succeeded');
    else log.error(fields, 'Transaction did not succeed');
  };
}
