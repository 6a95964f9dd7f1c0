import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface ServiceLockHolder {
  pid: number;
  purpose: string;
  since: string;
}

export type ServiceLockResult = { acquired: true; release(): Promise<void> } | { acquired: false; holder: ServiceLockHolder };

/**
 * One operation on a service at a time, across processes: an update transaction of the running
 * agent, a backup or a restore started from the command line, a scheduled backup. Each holds
 * `<state>/locks/<service>.lock` (its pid and purpose) while it works; a lock left by a dead
 * process is taken over. The reconciler leaves a locked service alone for that pass, so that a
 * container stopped for a consistent backup is never mistaken for drift.
 */
export class ServiceLocks {
  constructor(private readonly dir: string) {}

  async tryAcquire(service: string, purpose: string, now = new Date()): Promise<ServiceLockResult> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `${service}.lock`);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, 'wx', 0o600);
        const holder: ServiceLockHolder = { pid: process.pid, purpose, since: now.toISOString() };
        await fh.writeFile(JSON.stringify(holder));
        await fh.close();
        return { acquired: true, release: () => unlink(path).catch(() => undefined) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await this.holder(service);
      if (holder && isAlive(holder.pid)) return { acquired: false, holder };
      await unlink(path).catch(() => undefined);
    }
    const holder = await this.holder(service);
    return holder ? { acquired: false, holder } : { acquired: false, holder: { pid: 0, purpose: 'unknown', since: now.toISOString() } };
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
    try {
      return JSON.parse(await readFile(join(this.dir, `${service}.lock`), 'utf8')) as ServiceLockHolder;
    } catch {
      return undefined;
    }
  }
}

function isAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
