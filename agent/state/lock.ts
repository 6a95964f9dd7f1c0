import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../core/errors.js';
import { ownRecord, takeLock, type HeldLock } from './lock-file.js';

export type StateLock = HeldLock;

/**
 * One agent process changes a state directory at a time (`agent run` or `agent apply`).
 * See lock-file.ts for how a holder is told apart from a stale file, across containers too.
 */
export async function acquireStateLock(stateDir: string): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const r = await takeLock(join(stateDir, 'lock'), ownRecord('agent'));
  if ('held' in r) return r.held;
  const { pid, host } = r.holder;
  throw new AgentError('STATE_LOCKED', `another agent process (pid ${pid} on ${host}) is using the state directory ${stateDir}`, { data: { pid, host, stateDir } });
}
