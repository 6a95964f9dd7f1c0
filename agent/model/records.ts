import type { ErrorCode } from '../core/errors.js';
import type { GateFailure } from './health.js';
import type { AgentOptions, ContainerSpec, Dependency } from './desired.js';
import type { TxKind, TxPhase, TxResult } from './journal.js';

/** The records the agent keeps of what it did: per transaction, per service applied, per version held. */


/** One finished transaction, as the history and `agent status` show it. Never holds secrets. */
export interface TransactionRecord {
  txId: string;
  service: string;
  kind: TxKind;
  result: TxResult;
  revision: string;
  startedAt: string;
  finishedAt: string;
  from?: string;
  to?: string;
  /** For failures: what failed, in words ("rolled back: probe http://... got 500"). */
  reason?: string;
  code?: ErrorCode;
  /** The phase that failed. */
  failedPhase?: TxPhase;
  /** What the health gate saw, when the gate failed. */
  gate?: GateFailure;
  logs?: string;
  /** The backup taken before the update. */
  backup?: string;
  /** True when the transaction was finished by recovery after the agent was interrupted. */
  recovered?: boolean;
  /** The change was applied in place with the service's reload command (the container kept). */
  reloaded?: boolean;
  /** Stop-first: from the old container stopped to a container serving again, gate passed (agent/apply/downtime.ts). */
  downtimeMs?: number;
}

/** What the agent last applied successfully to a service: the fallback target while a newer spec is held. */
export interface AppliedRecord {
  hash: string;
  spec: ContainerSpec;
  agent: AgentOptions;
  dependsOn: Dependency[];
  revision: string;
  at: string;
  /**
   * Applied by a reload in place: this container (by id) runs this spec although its label,
   * fixed at its creation, still names the spec it was created with.
   */
  container?: { id: string; label: string };
}

/** A desired spec whose update failed: held until the desired state changes. */
export interface HeldRecord {
  /** failed: the update was tried and did not succeed; quarantined: renovate.json forbids the version. */
  kind?: 'failed' | 'quarantined';
  hash: string;
  image: string;
  revision: string;
  reason: string;
  at: string;
}
