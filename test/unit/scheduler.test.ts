import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { JobSpec } from '../../agent/model/desired.js';
import { createScheduler, nextRun } from '../../agent/schedule/scheduler.js';
import { StateStore } from '../../agent/state/store.js';
import { fakeClock } from './fakes/clock.js';

const job = (over: Partial<JobSpec> = {}): JobSpec => ({ name: 'nightly', schedule: '0 2 * * *', timezone: 'Europe/Berlin', missed: 'skip', backup: { services: [] }, ...over });

describe('nextRun', () => {
  it.each([
    ['0 2 * * *', 'UTC', '2026-11-22T03:00:00Z', '2026-11-23T02:00:00.000Z'],
    ['0 2 * * *', 'Europe/Berlin', '2026-11-22T00:30:00Z', '2026-11-22T01:00:00.000Z'],
    ['0 2 * * *', 'Europe/Berlin', '2026-07-01T00:30:00Z', '2026-07-02T00:00:00.000Z'],
    ['0 3 * * 1', 'UTC', '2026-11-22T00:00:00Z', '2026-11-23T03:00:00.000Z'],
  ])('%s in %s after %s is %s', (schedule, timezone, after, expected) => {
    expect(nextRun({ schedule, timezone }, new Date(after))?.toISOString()).toBe(expected);
  });
});

describe('missed runs', () => {
  async function startedAfterDowntime(missed: JobSpec['missed']): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'sched-'));
    // The last run was two days ago: the agent was down at 02:00 since.
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify({ nightly: { lastRunAt: '2026-11-20T01:00:00.000Z', lastResult: 'succeeded', schedule: '0 2 * * *' } }));
    const clock = fakeClock(Date.parse('2026-11-22T10:00:00Z'));
    const ran: string[] = [];
    const s = createScheduler({ records: new StateStore(dir).document('jobs'), clock, log: pino({ level: 'silent' }), run: async (j) => (ran.push(j.name), 'ok') });
    await s.update({ nightly: job({ missed }) });
    const ac = new AbortController();
    const loop = s.run(ac.signal);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await loop;
    return ran;
  }

  it('run-once: a run missed while the agent was down runs once at start', async () => {
    expect(await startedAfterDowntime('run-once')).toEqual(['nightly']);
  });

  it('skip: it waits for the next occurrence', async () => {
    expect(await startedAfterDowntime('skip')).toEqual([]);
  });
});
