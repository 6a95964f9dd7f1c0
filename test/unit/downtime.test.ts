import { describe, expect, it } from 'vitest';
import { downtimeMs } from '../../agent/apply/downtime.js';

const at = (s: number) => new Date(Date.UTC(2026, 11, 1, 10, 0, s)).toISOString();

describe('the downtime of a stop-first transaction, from its trail', () => {
  it('from the old container stopped to the new one past its gate, or the old one back after a rollback', () => {
    const phases = (list: [string, number][]) => list.map(([phase, s]) => ({ phase, at: at(s) })) as Parameters<typeof downtimeMs>[0];
    expect(downtimeMs(phases([['pull', 0], ['backup', 1], ['stop-old', 3], ['rename-old', 4], ['create-new', 4], ['start-new', 5], ['health-gate', 5], ['remove-old', 15], ['finish', 16]]))).toBe(12_000);
    expect(downtimeMs(phases([['pull', 0], ['stop-old', 2], ['start-new', 3], ['health-gate', 3], ['rollback-remove-new', 9], ['rollback-restore-old', 9], ['rollback-check-old', 10], ['finish', 14]]))).toBe(12_000);
    // a first deploy stops nothing
    expect(downtimeMs(phases([['pull', 0], ['create-new', 1], ['start-new', 1], ['health-gate', 1], ['finish', 5]]))).toBeUndefined();
  });
});
