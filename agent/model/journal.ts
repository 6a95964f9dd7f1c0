import type { ErrorClass, ErrorCode } from '../core/errors.js';
import type { GateFailure } from './health.js';
import type { AgentOptions, ContainerSpec, Dependency, NetworkSpec } from './desired.js';
import type { RestartPolicy } from './desired.js';
import type { Artifact } from './backup.js';
import type { ReloadMount } from './plan.js';

/**
 * The steps of an update transaction, in order. The journal names the step about to run; it
 * is written (atomically, fsync) before the step, and every step is idempotent, so an agent
 * killed anywhere resumes from the journal and finishes or undoes the transaction.
 */
export const FORWARD_PHASES = ['pull', 'backup', 'stop-old', 'backup-files', 'rename-old', 'create-new', 'start-new', 'health-gate', 'remove-old'] as const;
/**
 * The steps of a start-first update: `rename-old` (the old one keeps running), `create-new`
 * (without the service's aliases), `start-new`, `health-gate`, then these: `switch` (the new one
 * takes the aliases), `drain` (both answer), `retire-old` (the old one is stopped), `remove-old`.
 */
export const START_FIRST_PHASES = ['switch', 'drain', 'retire-old'] as const;
/**
 * The steps of a reload in place (`x-agent.reload`): `pull` (the copies), `swap-files` (the live
 * folders get the new files), `reload` (the command), `health-gate`; on failure the previous
 * files (`rollback-swap-files`), the command again (`rollback-reload`), `rollback-check-old`.
 */
export const RELOAD_PHASES = ['swap-files', 'reload', 'rollback-swap-files', 'rollback-reload'] as const;
export const ROLLBACK_PHASES = ['rollback-remove-new', 'rollback-restore-files', 'rollback-restore-old', 'rollback-restore-db', 'rollback-check-old'] as const;
export type ForwardPhase = (typeof FORWARD_PHASES)[number];
export type RollbackPhase = (typeof ROLLBACK_PHASES)[number];
/** `finish`: the result is known and is being recorded; the journal goes once it is. */
export type TxPhase = ForwardPhase | (typeof START_FIRST_PHASES)[number] | (typeof RELOAD_PHASES)[number] | RollbackPhase | 'finish';

/** Phases in which nothing that runs has been touched yet: an interrupted transaction there is simply dropped. */
export const PRE_CHANGE_PHASES: readonly TxPhase[] = ['pull', 'backup'];

/** interrupted: the agent stopped before anything had changed; the update will be tried again. */
export type TxResult = 'succeeded' | 'failed' | 'rolled-back' | 'rollback-failed' | 'interrupted';

export type TxKind = 'create' | 'update' | 'remove';

export interface JournalOld {
  containerId: string;
  name: string;
  image: string;
  hash: string;
  /** The restart policy before the agent disarmed it, restored on rollback. */
  restartPolicy: RestartPolicy;
  stopTimeoutMs: number;
  /** Health options of the old version, for the check after a rollback. */
  agent?: AgentOptions;
}

export interface JournalNew {
  hash: string;
  image: string;
  spec: ContainerSpec;
  agent: AgentOptions;
  dependsOn: Dependency[];
  containerId?: string;
  /** Named volumes the spec mounts that must already exist (declared `external`). */
  externalVolumes: string[];
  /** The networks it joins: created when missing, before the container. */
  networks?: NetworkSpec[];
  /** Labels of the named volumes it creates, by engine name. */
  volumeLabels?: Record<string, Record<string, string>>;
  /** Drivers and driver options of the named volumes it creates (top-level `volumes.<key>.driver`, `driver_opts`), by engine name. */
  volumeDrivers?: Record<string, { name: string; options: Record<string, string> }>;
}

export interface JournalFailure {
  code: ErrorCode;
  /** The error's class: only a terminal failure holds the version (absent in journals of older agents: from the code). */
  errorClass?: ErrorClass;
  message: string;
  /** What the health gate saw, when it was the gate that failed. */
  gate?: GateFailure;
  /** Last lines of the failed container's output. */
  logs?: string;
  phase: TxPhase;
  at: string;
}

/** The backup a transaction took: what a rollback can restore. */
export interface JournalBackup {
  id: string;
  startedAt: string;
  artifacts: Artifact[];
  /** Every artifact is taken. */
  complete: boolean;
  /**
   * false: the manifest is still to be written (after the new container starts). Absent in a
   * journal of a version that wrote it with the artifacts: written already.
   */
  committed?: boolean;
  restoreOnRollback: boolean;
}

export interface Journal {
  version: 1;
  txId: string;
  stack: string;
  service: string;
  kind: TxKind;
  revision: string;
  startedAt: string;
  phase: TxPhase;
  /**
   * The target is not the desired spec but the last applied one (the desired one is held,
   * paused or waiting for its window): the outcome neither clears nor sets a held version.
   */
  repair?: boolean;
  old?: JournalOld;
  new?: JournalNew;
  /** A reload in place: the old container is kept (it is `new.containerId` too), its live folders change. */
  reload?: { mounts: ReloadMount[] };
  backup?: JournalBackup;
  failure?: JournalFailure;
  /** Set when the previous version could not be brought back healthy. */
  rollbackFailure?: string;
  /** Known once the transaction reaches `finish`. */
  result?: TxResult;
  /** Every phase entered, with its time: the transaction's trail for `agent status` and the history. */
  trail: { phase: TxPhase; at: string }[];
}

/** A start-first update: an old container to replace, and a target that asks for it. */
export function isStartFirst(j: Journal): boolean {
  return !!j.old && !!j.new?.agent.startFirst && j.kind === 'update';
}
