/** The dependencies of a transaction on the in-memory engine: a silent log, no backup, the real health gate on the fake clock, failpoints as a callback. */
import pino from 'pino';
import type { Clock } from '../../../agent/core/clock.js';
import { runHealthGate } from '../../../agent/health/gate.js';
import type { TxDeps } from '../../../agent/apply/types.js';
import { noBackup } from '../../../agent/ports/tx-backup.js';
import type { JournalPort } from '../../../agent/ports/state.js';
import type { FakeDocker } from './fake-docker.js';

let txCounter = 0;

export function fakeTxDeps(docker: FakeDocker, journals: JournalPort, clock: Clock, onPoint?: (name: string) => void, extra: Partial<TxDeps> = {}): TxDeps {
  return {
    docker,
    journals,
    clock,
    log: pino({ level: 'silent' }),
    backup: noBackup,
    failpoint: (name) => onPoint?.(name),
    gate: (id, opts, signal) => runHealthGate({ docker, clock, pollMs: 100 }, id, opts, signal),
    newTxId: () => `tx${++txCounter}`,
    ...extra,
  };
}
