import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { ContainerId } from '../core/ids.js';
import type { HealthOptions } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';
import type { GateVerdict } from '../model/health.js';
import type { Journal } from '../model/journal.js';
import type { JournalPort } from '../ports/state.js';
import type { Failpoint } from '../core/failpoints.js';
import type { TxBackup } from '../ports/tx-backup.js';
import type { ProjectFilesPort } from '../ports/project-files.js';

export interface TxDeps {
  docker: DockerPort;
  journals: JournalPort;
  clock: Clock;
  log: Logger;
  backup: TxBackup;
  failpoint: Failpoint;
  /** The health gate; injectable so that unit tests can decide verdicts. */
  gate: (containerId: ContainerId, options: HealthOptions, signal?: AbortSignal) => Promise<GateVerdict>;
  newTxId: () => string;
  /** The copies of the repository's files and the data directories a target binds; none: a target needing them fails. */
  files?: ProjectFilesPort;
}

export type { Journal };
