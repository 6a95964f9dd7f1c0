import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { ContainerId } from '../core/ids.js';
import type { HealthOptions } from '../desired/types.js';
import type { DockerPort } from '../docker/port.js';
import type { GateVerdict } from '../health/gate.js';
import type { Journal, JournalNew, JournalOld, JournalStore } from '../state/journal.js';

/** What the backup step of a transaction is given; the backup issue plugs its implementation in here. */
export interface BackupContext {
  stack: string;
  service: string;
  txId: string;
  old?: JournalOld;
  target?: JournalNew;
  signal?: AbortSignal;
}

/** Takes the backup a rollback can return to; throwing aborts the update with nothing changed. */
export type BackupHook = (ctx: BackupContext) => Promise<void>;

/** Named points where a test can stop the process dead (SIGKILL) to prove recovery. */
export type Failpoint = (name: string) => void;

export interface TxDeps {
  docker: DockerPort;
  journals: JournalStore;
  clock: Clock;
  log: Logger;
  backup: BackupHook;
  failpoint: Failpoint;
  /** The health gate; injectable so that unit tests can decide verdicts. */
  gate: (containerId: ContainerId, options: HealthOptions, signal?: AbortSignal) => Promise<GateVerdict>;
  newTxId: () => string;
}

export type { Journal };
