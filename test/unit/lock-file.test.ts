import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLockLive, parseLockRecord, PROCESS_TOKEN, STALE_AFTER_MS } from '../../agent/state/lock-file.js';
import { acquireStateLock } from '../../agent/state/lock.js';
import { ServiceLocks } from '../../agent/state/service-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const now = 1_800_000_000_000;

describe('isLockLive', () => {
  it('trusts a fresh heartbeat from another host (container) and takes over a stale one', () => {
    const rec = { pid: 1, host: 'other-container', token: 't', since: '' };
    expect(isLockLive(rec, now - 10_000, now)).toBe(true);
    expect(isLockLive(rec, now - STALE_AFTER_MS - 1, now)).toBe(false);
  });

  it('tells PID namespaces apart on one host (containers with host networking share its name)', () => {
    const rec = { pid: process.pid, host: hostname(), ns: 'pid:[1]', token: 'other', since: '' };
    expect(isLockLive(rec, now - 10_000, now, hostname(), process.pid, 'pid:[2]')).toBe(true);
    expect(isLockLive(rec, now - STALE_AFTER_MS - 1, now, hostname(), process.pid, 'pid:[2]')).toBe(false);
  });

  it('treats its own pid with another token as a predecessor (container restarted as pid 1)', () => {
    const pred = { pid: process.pid, host: hostname(), token: 'previous-process', since: '' };
    expect(isLockLive(pred, now, now)).toBe(false);
    expect(isLockLive({ ...pred, token: PROCESS_TOKEN }, now, now)).toBe(true);
  });

  it('checks another pid on the same host with a signal', () => {
    expect(isLockLive({ pid: process.ppid, host: hostname(), token: 'x', since: '' }, 0, now)).toBe(true);
    expect(isLockLive({ pid: 2 ** 22 + 17, host: hostname(), token: 'x', since: '' }, now, now)).toBe(false);
  });

  it('gives a half-written file a few seconds, then takes it over', () => {
    const empty = parseLockRecord('');
    expect(isLockLive(empty, now - 1000, now)).toBe(true);
    expect(isLockLive(empty, now - 60_000, now)).toBe(false);
  });
});

describe('parseLockRecord', () => {
  it('reads the legacy pid-only form as a lock of this host', () => {
    expect(parseLockRecord('4242\n')).toMatchObject({ pid: 4242, host: hostname() });
  });
});

describe('acquireStateLock', () => {
  it('refuses while held, takes over a stale lock left by an earlier incarnation with the same pid', async () => {
    const held = await acquireStateLock(dir);
    await expect(acquireStateLock(dir)).rejects.toMatchObject({ code: 'STATE_LOCKED' });
    await held.release();

    await writeFile(join(dir, 'lock'), JSON.stringify({ pid: process.pid, host: hostname(), token: 'old-boot', since: '2026-01-01T00:00:00Z' }));
    const again = await acquireStateLock(dir);
    expect(JSON.parse(await readFile(join(dir, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid, token: PROCESS_TOKEN });
    await again.release();
  });

  it('refuses a lock kept fresh by an agent in another PID namespace of this host', async () => {
    await writeFile(join(dir, 'lock'), JSON.stringify({ pid: process.pid, host: hostname(), ns: 'pid:[99]', token: 'x', since: '2026-01-01T00:00:00Z' }));
    await expect(acquireStateLock(dir)).rejects.toMatchObject({ code: 'STATE_LOCKED' });
  });

  it('refuses a lock kept fresh by an agent in another container, takes it once stale', async () => {
    const path = join(dir, 'lock');
    await writeFile(path, JSON.stringify({ pid: 1, host: 'abc123container', token: 'x', since: '2026-01-01T00:00:00Z' }));
    await expect(acquireStateLock(dir)).rejects.toThrow(/pid 1 on abc123container/);
    const old = new Date(Date.now() - STALE_AFTER_MS - 5000);
    await utimes(path, old, old);
    const taken = await acquireStateLock(dir);
    await taken.release();
  });
});

describe('ServiceLocks', () => {
  it('reports the holder with its host, and frees on release', async () => {
    const locks = new ServiceLocks(join(dir, 'locks'));
    const first = await locks.tryAcquire('postgres', 'backup');
    expect(first.acquired).toBe(true);
    const second = await locks.tryAcquire('postgres', 'update');
    expect(second).toMatchObject({ acquired: false, holder: { pid: process.pid, host: hostname(), purpose: 'backup' } });
    if (first.acquired) await first.release();
    const third = await locks.tryAcquire('postgres', 'update');
    expect(third.acquired).toBe(true);
    if (third.acquired) await third.release();
  });
});
