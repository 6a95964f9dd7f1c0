import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceLockHolder, ServiceLockResult, ServiceLocks as ServiceLocksPort } from '../ports/state.js';
import { ownRecord, readLockFile, takeLock } from './lock-file.js';

/**
 * One operation on a service at a time, across processes: an update transaction of the running
 * agent, a backup or a restore started from the command line, a scheduled backup. Each holds
 * `<state>/locks/<service>.lock` (pid, host, purpose) while it works; a lock left by a dead
 * process, also one in another container, is taken over (lock-file.ts). The reconciler leaves a
 * locked service alone for that pass, so that a container stopped for a consistent backup is
 * never mistaken for drift.
 */
export class ServiceLocks implements ServiceLocksPort {
  constructor(private readonly dir: string) {}

  async tryAcquire(service: string, purpose: string, now = new Date()): Promise<ServiceLockResult> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const r = await takeLock(join(this.dir, `${service}.lock`), ownRecord(purpose, now));
    return 'held' in r ? { acquired: true, release: () => r.held.release() } : { acquired: false, holder: toHolder(r.holder) };
  }

  /** Waits until the lock is free, up to `timeoutMs`. */
  async acquire(service: string, purpose: string, timeoutMs: number, sleep: (ms: number) => Promise<void>): Promise<ServiceLockResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.tryAcquire(service, purpose);
      if (r.acquired || Date.now() >= deadline) return r;
      await sleep(500);
    }
  }

  async holder(service: string): Promise<ServiceLockHolder | undefined> {
    const seen = await readLockFile(join(this.dir, `${service}.lock`));
    return seen ? toHolder(seen.record) : undefined;
  }
}

function toHolder(r: { pid: number; host: string; purpose?: string; since: string }): ServiceLockHolder {
  return { pid: r.pid, host: r.host, purpose: r.purpose ?? 'unknown', since: r.since };
}
