import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../core/errors.js';
import { createLockFile, isLockLive, ownRecord, readLockFile, removeStaleLock, type HeldLock } from './lock-file.js';

export type StateLock = HeldLock;

/**
 * One agent process changes a state directory at a time (`agent run` or `agent apply`).
 * See lock-file.ts for how a holder is told apart from a stale file, across containers too.
 */
export async function acquireStateLock(stateDir: string): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    const held = await createLockFile(path, ownRecord('agent'));
    if (held) return held;
    const seen = await readLockFile(path);
    if (!seen) continue;
    if (isLockLive(seen.record, seen.mtimeMs)) {
      const { pid, host } = seen.record;
      throw new AgentError('STATE_LOCKED', `another agent process (pid ${pid} on ${host}) is using the state directory ${stateDir}`, {
        data: { pid, host, stateDir },
      });
    }
    await removeStaleLock(path, seen.record);
  }
  throw new AgentError('STATE_LOCKED', `could not take the lock of ${stateDir}`, { data: { stateDir } });
}
