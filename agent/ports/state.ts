import type { AgentState } from '../model/agent-state.js';
import type { Journal } from '../model/journal.js';
import type { AppliedRecord, TransactionRecord } from '../model/records.js';

/** In-flight transactions, one journal per service (written atomically before every step). */
export interface JournalReader {
  read(service: string): Promise<Journal | undefined>;
  list(): Promise<Journal[]>;
}

export interface JournalPort extends JournalReader {
  write(journal: Journal): Promise<void>;
  remove(service: string): Promise<void>;
}

export interface ServiceLockHolder {
  pid: number;
  host?: string;
  purpose: string;
  since: string;
}

export type ServiceLockResult = { acquired: true; release(): Promise<void> } | { acquired: false; holder: ServiceLockHolder };

/** One operation on a service at a time, across processes (update, backup, restore). */
export interface ServiceLocks {
  tryAcquire(service: string, purpose: string): Promise<ServiceLockResult>;
  /** Waits until the lock is free, up to `timeoutMs`. */
  acquire(service: string, purpose: string, timeoutMs: number, sleep: (ms: number) => Promise<void>): Promise<ServiceLockResult>;
  holder(service: string): Promise<ServiceLockHolder | undefined>;
}

/** A JSON document kept in the state directory for another layer (the notifier's, the scheduler's). */
export interface StateDocument<T> {
  load(): Promise<T | undefined>;
  save(value: T): Promise<void>;
}

/** The documents of the state directory that belong to other layers; the state layer owns their file names. */
export type StateDocumentName = 'notifier' | 'jobs' | 'drills';

/**
 * The state directory as read-only commands see it (`agent status`, `agent plan`): everything
 * the agent recorded, and no way to change it.
 */
export interface StateReader {
  /** For people: where the state lives. */
  readonly location: string;
  load(): Promise<AgentState>;
  loadApplied(): Promise<Record<string, AppliedRecord>>;
  readHistory(limit?: number): Promise<TransactionRecord[]>;
  readonly journals: JournalReader;
  readDocument<T>(name: StateDocumentName): Promise<T | undefined>;
  /** The live holder of the agent lock, when an agent process owns the directory. */
  agentHolder(): Promise<{ pid: number; host: string } | undefined>;
  /** Who is busy with a service (a backup, a restore, a transaction). */
  serviceHolder(service: string): Promise<ServiceLockHolder | undefined>;
}

/** The state directory as `agent run`, `agent apply` and the backup commands change it. */
export interface StatePort extends StateReader {
  init(): Promise<void>;
  save(state: AgentState): Promise<void>;
  saveApplied(service: string, record: AppliedRecord): Promise<void>;
  removeApplied(service: string): Promise<void>;
  appendHistory(record: TransactionRecord): Promise<void>;
  readonly journals: JournalPort;
  readonly locks: ServiceLocks;
  document<T>(name: StateDocumentName): StateDocument<T>;
  /** Takes the agent lock: one agent process changes the directory at a time. STATE_LOCKED otherwise. */
  lockAgent(): Promise<{ release(): Promise<void> }>;
  /** Where the agent keeps its copy of the desired-state repository. */
  gitDir(): string;
}
