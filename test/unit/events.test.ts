import { describe, expect, it } from 'vitest';
import { createUnreachableWatch, eventsFromReport } from '../../agent/notify/events-from-report.js';
import type { ReconcileReport } from '../../agent/model/report.js';
import type { TransactionRecord } from '../../agent/model/records.js';

const scope = { host: 'h', stack: 's', at: '2026-11-22T00:00:00Z' };
const tx = (over: Partial<TransactionRecord>): TransactionRecord => ({ txId: 't1', service: 'web', kind: 'update', result: 'succeeded', revision: 'r', startedAt: '', finishedAt: '', from: `reg/web:1.0.0@sha256:${'a'.repeat(64)}`, to: `reg/web:1.1.0@sha256:${'b'.repeat(64)}`, ...over });
const report = (transactions: TransactionRecord[], over: Partial<ReconcileReport> = {}): ReconcileReport => ({ result: 'failed', message: '', transactions, ...over });

describe('eventsFromReport', () => {
  it.each<[string, TransactionRecord, string | undefined, string | undefined]>([
    ['a rollback is an update-failed warning', tx({ result: 'rolled-back', reason: 'rolled back: probe' }), 'update-failed', 'web update web:1.0.0 -> web:1.1.0 failed and was rolled back'],
    ['a failed rollback is critical', tx({ result: 'rollback-failed' }), 'update-failed', 'web update web:1.0.0 -> web:1.1.0 failed, and the rollback failed too'],
    ['a backup failure aborting an update', tx({ result: 'failed', code: 'BACKUP_FAILED' }), 'backup-failed', 'web: the backup before the update web:1.0.0 -> web:1.1.0 failed; the update was aborted, nothing changed'],
    ['an interruption is no news', tx({ result: 'interrupted' }), undefined, undefined],
    ['an auto-policy success is no news', tx({}), undefined, undefined],
  ])('%s', (_n, t, type, title) => {
    const events = eventsFromReport(report([t]), scope);
    expect(events.map((e) => e.type)[0]).toBe(type);
    if (title) expect(events[0]?.title).toBe(title);
  });

  it('the same failure again at the same desired state is one problem; at another desired state it is news', () => {
    const key = (t: TransactionRecord) => eventsFromReport(report([t]), scope)[0]?.dedupKey;
    for (const failed of [tx({ result: 'failed', code: 'BACKUP_FAILED' }), tx({ result: 'failed', code: 'PULL_FAILED' })]) {
      expect(key({ ...failed, txId: 't2' })).toBe(key(failed));
      expect(key({ ...failed, revision: 'r2' })).not.toBe(key(failed));
    }
  });

  it('a manual-policy update that succeeded is announced', () => {
    const desired = { stack: 's', services: { web: { agent: { policy: 'manual' } } } } as unknown as ReconcileReport['desired'];
    expect(eventsFromReport(report([tx({})], { desired }), scope).map((e) => e.type)).toEqual(['update-applied']);
  });
});

describe('createUnreachableWatch', () => {
  it('speaks once the engine has been down longer than the threshold, and forgets it when it is back', () => {
    const watch = createUnreachableWatch(10 * 60_000);
    // Typed: the reason the pass was blocked, never the wording of its message.
    const down: ReconcileReport = { result: 'error', message: 'the wording may change', transactions: [], blocked: { reason: 'DockerUnavailable', message: 'Docker engine unavailable: ENOENT', errorClass: 'transient' } };
    expect(watch(down, scope, 0)).toEqual([]);
    expect(watch(down, scope, 5 * 60_000)).toEqual([]);
    expect(watch(down, scope, 11 * 60_000).map((e) => [e.type, e.title])).toEqual([['dependency-unreachable', 'the Docker engine has been unreachable for 11 min']]);
    expect(watch({ result: 'no-op', message: '', transactions: [] }, scope, 12 * 60_000)).toEqual([]);
    expect(watch(down, scope, 13 * 60_000)).toEqual([]);
  });
});
