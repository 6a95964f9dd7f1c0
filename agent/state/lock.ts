import { open, readFile, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../core/errors.js';

export interface StateLock {
  release(): Promise<void>;
}

/**
 * One agent process changes a state directory at a time (`agent run` or `agent apply`).
 * The lock file holds the owner's pid; a lock left by a dead process is taken over.
 */
export async function acquireStateLock(stateDir: string, pid = process.pid): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${pid}\n`);
      await fh.sync();
      await fh.close();
      return { release: () => unlink(path).catch(() => undefined) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (owner && owner !== pid && isAlive(owner)) {
      throw new AgentError('STATE_LOCKED', `another agent process (pid ${owner}) is using the state directory ${stateDir}`, { data: { pid: owner, stateDir } });
    }
    await unlink(path).catch(() => undefined);
  }
  throw new AgentError('STATE_LOCKED', `could not take the lock of ${stateDir}`, { data: { stateDir } });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
