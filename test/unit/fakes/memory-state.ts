import { AgentError } from '../../../agent/core/errors.js';
import { emptyState, type AgentState } from '../../../agent/model/agent-state.js';
import type { Journal } from '../../../agent/model/journal.js';
import type { AppliedRecord, TransactionRecord } from '../../../agent/model/records.js';
import type { JournalPort, ServiceLockResult, ServiceLocks, StateDocument, StateDocumentName, StatePort } from '../../../agent/ports/state.js';

/** The state directory in memory: counts its writes, and can hold a service lock for "another process". */
export class MemoryState implements StatePort {
  readonly location = 'memory:';
  state: AgentState = emptyState();
  readonly applied: Record<string, AppliedRecord> = {};
  readonly history: TransactionRecord[] = [];
  readonly docs = new Map<string, unknown>();
  saves = 0;
  /** Services another process is busy with. */
  readonly busy = new Set<string>();
  private readonly journalMap = new Map<string, Journal>();

  readonly journals: JournalPort = {
    read: async (s) => structuredClone(this.journalMap.get(s)),
    list: async () => [...this.journalMap.values()].map((j) => structuredClone(j)),
    write: async (j) => void this.journalMap.set(j.service, structuredClone(j)),
    remove: async (s) => void this.journalMap.delete(s),
  };

  readonly locks: ServiceLocks = {
    tryAcquire: async (service, purpose): Promise<ServiceLockResult> =>
      this.busy.has(service) ? { acquired: false, holder: { pid: 4242, purpose: `scheduled backup (not ${purpose})`, since: '2026-11-22T09:59:00Z' } } : { acquired: true, release: async () => undefined },
    acquire: async (service, purpose) => this.locks.tryAcquire(service, purpose),
    holder: async () => undefined,
  };

  async init(): Promise<void> {}
  async load(): Promise<AgentState> {
    return structuredClone(this.state);
  }
  async save(state: AgentState): Promise<void> {
    this.saves++;
    this.state = structuredClone(state);
  }
  async loadApplied(): Promise<Record<string, AppliedRecord>> {
    return structuredClone(this.applied);
  }
  async saveApplied(service: string, record: AppliedRecord): Promise<void> {
    this.applied[service] = structuredClone(record);
  }
  async removeApplied(service: string): Promise<void> {
    delete this.applied[service];
  }
  async appendHistory(record: TransactionRecord): Promise<void> {
    this.history.push(record);
  }
  async readHistory(limit = 50): Promise<TransactionRecord[]> {
    return this.history.slice(-limit);
  }
  document<T>(name: StateDocumentName): StateDocument<T> {
    return { load: async () => this.docs.get(name) as T | undefined, save: async (v) => void this.docs.set(name, v) };
  }
  async readDocument<T>(name: StateDocumentName): Promise<T | undefined> {
    return this.docs.get(name) as T | undefined;
  }
  async agentHolder() {
    return undefined;
  }
  async serviceHolder() {
    return undefined;
  }
  async lockAgent() {
    return { release: async () => undefined };
  }
  gitDir(): string {
    throw new AgentError('INTERNAL', 'the memory state has no git directory');
  }
}
