import type { Logger } from 'pino';
import { isoTime, type Clock } from '../core/clock.js';
import type { RecordOutcome } from '../apply/transaction.js';
import type { AgentState } from '../model/agent-state.js';
import type { AppliedRecord } from '../model/records.js';
import type { StatePort } from '../ports/state.js';
import { revertRequestOf } from './revert-request.js';

/**
 * The agent state and the applied records of one pass, read once at its start and kept in
 * memory. Changes are made in memory; `checkpoint` writes state.json when it changed since the
 * last write (one write at a time, even with transactions running in parallel). A pass that
 * changes nothing writes once, at its end.
 */
export class PassState {
  private saved: string;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: StatePort,
    readonly state: AgentState,
    /** What the agent last applied, per service; kept up to date by the outcomes the pass records. */
    readonly applied: Record<string, AppliedRecord>,
  ) {
    this.saved = JSON.stringify(state);
  }

  static async load(store: StatePort): Promise<PassState> {
    const [state, applied] = await Promise.all([store.load(), store.loadApplied()]);
    return new PassState(store, state, applied);
  }

  change(fn: (state: AgentState) => void): void {
    fn(this.state);
  }

  /** Writes the state if it changed; resolves once what was changed before the call is on disk. */
  checkpoint(): Promise<void> {
    const next = this.chain.then(async () => {
      const text = JSON.stringify(this.state);
      if (text === this.saved) return;
      await this.store.save(this.state);
      this.saved = text;
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}

/**
 * Persists a transaction's outcome before its journal goes: the applied record, the history,
 * the held version, the service's last transaction. Idempotent, as a crash in between repeats it.
 */
export interface RecorderOptions {
  /** Git sources with reverts on: a held update's revert request is recorded with its outcome. */
  queueReverts: boolean;
  clock: Clock;
}

export function outcomeRecorder(store: StatePort, pass: PassState, log: Logger, redact: (text: string) => string, options: RecorderOptions): RecordOutcome {
  return async (outcome) => {
    const { journal } = outcome;
    // Container output can echo its environment: secrets are cut before anything is written.
    const record = { ...outcome.record };
    if (record.reason) record.reason = redact(record.reason);
    if (record.logs) record.logs = redact(record.logs);
    if (record.gate) record.gate = redactStrings(record.gate, redact);
    outcome.record = record;
    // The revert is asked for in the same write as the held version, before the journal goes:
    // a crash afterwards (in a later wave, say) cannot lose it.
    const revert = options.queueReverts ? revertRequestOf(outcome, pass.applied[journal.service]) : undefined;
    const service = journal.service;
    const removed = record.result === 'succeeded' && journal.kind === 'remove';
    if (removed) {
      await store.removeApplied(service);
      delete pass.applied[service];
    } else if (record.result === 'succeeded' && journal.new) {
      const n = journal.new;
      const applied: AppliedRecord = { hash: n.hash, spec: n.spec, agent: n.agent, dependsOn: n.dependsOn, revision: journal.revision, at: record.finishedAt };
      // Reloaded in place: the kept container's label still names the spec it was created with.
      // (Reloaded before: the label is still the one of its creation.)
      if (journal.reload && journal.old) {
        const before = pass.applied[service]?.container;
        applied.container = { id: journal.old.containerId, label: before?.id === journal.old.containerId ? before.label : journal.old.hash };
      }
      await store.saveApplied(service, applied);
      pass.applied[service] = applied;
    }
    await store.appendHistory(record);
    pass.change((state) => {
      if (removed) {
        delete state.services[service];
        return;
      }
      const entry = (state.services[service] ??= {});
      entry.lastTransaction = record;
      delete entry.waiting;
      // A repair ran the last applied spec: what is held (the desired one) stays held.
      if (record.result === 'succeeded' && !journal.repair) delete entry.held;
      if (outcome.held && journal.new) entry.held = { kind: 'failed', hash: journal.new.hash, image: journal.new.image, revision: journal.revision, reason: record.reason ?? record.result, at: record.finishedAt };
      if (revert) entry.revert = { state: 'pending', request: revert, attempts: 0, at: isoTime(options.clock) };
    });
    await pass.checkpoint();
    const fields = { service, tx: record.txId, result: record.result, from: record.from, to: record.to, reason: record.reason };
    if (record.result === 'succeeded') log.info(fields, 'Transaction succeeded');
    else log.error(fields, 'Transaction did not succeed');
  };
}

/** Every string of a value redacted (the typed gate failure quotes the container's output). */
function redactStrings<T>(value: T, redact: (text: string) => string): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactStrings(v, redact)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactStrings(v, redact)])) as T;
  return value;
}
