import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createArchiveRepository } from '../../agent/backup/archive-repository.js';
import type { BackupManifest } from '../../agent/model/backup.js';
import { removeIncomplete } from '../../agent/backup/engine.js';
import { selectExpired } from '../../agent/backup/retention.js';
import { createLocalStore } from '../../agent/backup/store/local.js';
import { systemClock } from '../../agent/core/clock.js';
import { FakeDocker } from './fakes/fake-docker.js';

const DAY = 86_400_000;
const now = Date.UTC(2026, 10, 22);
const m = (id: string, daysAgo: number): BackupManifest => ({ version: 1, id, host: 'h', stack: 's', service: 'db', reason: 'scheduled', createdAt: new Date(now - daysAgo * DAY).toISOString(), finishedAt: '', image: 'x', consistency: 'none', store: '', artifacts: [] });
const all = [m('a', 0), m('b', 1), m('c', 2), m('d', 10), m('e', 40)];

describe('selectExpired', () => {
  it.each([
    ['keep 3', { keep: 3 }, [], ['d', 'e']],
    ['keep 3 or younger than 7 days', { keep: 3, maxAgeMs: 7 * DAY }, [], ['d', 'e']],
    ['keep 1 or younger than 30 days', { keep: 1, maxAgeMs: 30 * DAY }, [], ['e']],
    ['keep 1, d protected by an in-flight transaction', { keep: 1 }, ['d'], ['b', 'c', 'e']],
    ['keep 0 still keeps the newest', { keep: 0 }, [], ['b', 'c', 'd', 'e']],
  ])('%s', (_n, retention, protectedIds, expected) => {
    expect(selectExpired(all, { retention }, now, new Set(protectedIds)).map((x) => x.id).sort()).toEqual(expected);
  });
});

describe('local store', () => {
  it('stores under the final key only once complete; lists, reads, deletes and prunes empty directories', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const store = createLocalStore(root);
    await store.check();
    expect(await store.put('h/s/db/1/data.bin', Readable.from([Buffer.alloc(1000, 1), Buffer.alloc(24, 2)]))).toEqual({ bytes: 1024 });
    await store.putSmall('h/s/db/1/manifest.json', JSON.stringify(m('1', 0)));
    expect((await store.list('h/s/')).map((o) => [o.key, o.size])).toEqual([
      ['h/s/db/1/data.bin', 1024],
      ['h/s/db/1/manifest.json', expect.any(Number)],
    ]);
    expect((await createArchiveRepository(store, new FakeDocker(), pino({ level: 'silent' })).list()).map((x) => x.id)).toEqual(['1']);
    const failing = new Readable({ read() { this.destroy(new Error('source broke')); } });
    await expect(store.put('h/s/db/2/data.bin', failing)).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
    expect(readdirSync(join(root, 'h/s/db/2'))).toEqual([]);
    await store.delete(['h/s/db/1/data.bin', 'h/s/db/1/manifest.json']);
    expect(await store.list('')).toEqual([]);
    await expect(store.put('../escape', Readable.from(['x']))).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
  });

  it('removes backups that never got a manifest, except those still in flight', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    const store = createLocalStore(root);
    for (const id of ['done', 'broken', 'inflight']) await store.put(`h/s/db/${id}/postgres.dump`, Readable.from(['x']));
    await store.putSmall('h/s/db/done/manifest.json', JSON.stringify(m('done', 0)));
    const docker = new FakeDocker();
    const ctx = { docker, repo: createArchiveRepository(store, docker, pino({ level: 'silent' })), clock: systemClock, log: pino({ level: 'silent' }), host: 'h', stack: 's' };
    expect(await removeIncomplete(ctx, 'db', new Set(['inflight']))).toEqual(['broken']);
    expect(readdirSync(join(root, 'h/s/db')).sort()).toEqual(['done', 'inflight']);
  });
});
