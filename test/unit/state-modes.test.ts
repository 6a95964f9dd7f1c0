import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyState } from '../../agent/model/agent-state.js';
import { StateStore } from '../../agent/state/store.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('state files are 0600', () => {
  it('writes every state file 0600, and tightens the ones an earlier version left 0644', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-modes-'));
    for (const f of ['state.json', 'history.jsonl', 'jobs.json', 'drills.json']) writeFileSync(join(dir, f), f.endsWith('.jsonl') ? '' : '{}\n', { mode: 0o644 });
    const store = new StateStore(dir);
    await store.init();
    expect(mode(dir)).toBe(0o700);
    for (const f of ['state.json', 'history.jsonl', 'jobs.json', 'drills.json']) expect(mode(join(dir, f)), f).toBe(0o600);

    const fresh = mkdtempSync(join(tmpdir(), 'state-modes-'));
    const s2 = new StateStore(fresh);
    await s2.init();
    await s2.save(emptyState());
    await s2.document('jobs').save({});
    await s2.document('drills').save({});
    expect(mode(join(fresh, 'state.json'))).toBe(0o600);
    expect(mode(join(fresh, 'jobs.json'))).toBe(0o600);
    expect(mode(join(fresh, 'drills.json'))).toBe(0o600);
  });
});
