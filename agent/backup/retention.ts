import type { Logger } from 'pino';
import type { BackupPolicy } from '../model/desired.js';
import { listBackups } from './catalog.js';
import { servicePrefix } from './manifest.js';
import { type BackupManifest } from '../model/backup.js';
import type { BackupStore } from '../ports/backup-store.js';

/**
 * Which backups of one service to delete: a backup is kept when it is among the `keep` newest,
 * or younger than `maxAge`, or protected (an in-flight transaction depends on it). The newest
 * complete backup is always kept. Pure: the caller deletes.
 */
export function selectExpired(backups: readonly BackupManifest[], policy: BackupPolicy, now: number, protectedIds: ReadonlySet<string>): BackupManifest[] {
  const newestFirst = [...backups].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const { keep, maxAgeMs } = policy.retention;
  return newestFirst.filter((m, i) => {
    if (i < Math.max(1, keep) || protectedIds.has(m.id)) return false;
    if (maxAgeMs !== undefined && now - Date.parse(m.createdAt) < maxAgeMs) return false;
    return true;
  });
}

export async function applyRetention(store: BackupStore, scope: { host: string; stack: string; service: string }, policy: BackupPolicy, now: number, protectedIds: ReadonlySet<string>, log: Logger): Promise<string[]> {
  const prefix = servicePrefix(scope.host, scope.stack, scope.service);
  const expired = selectExpired(await listBackups(store, prefix), policy, now, protectedIds);
  for (const m of expired) {
    // The manifest goes first: a half-deleted backup is then an incomplete one, never a broken "complete" one.
    const keys = (await store.list(`${prefix}${m.id}/`)).map((o) => o.key);
    await store.delete(keys.filter((k) => k.endsWith('/manifest.json')));
    await store.delete(keys.filter((k) => !k.endsWith('/manifest.json')));
  }
  if (expired.length > 0) log.info({ service: scope.service, deleted: expired.map((m) => m.id) }, 'Old backups deleted by retention');
  return expired.map((m) => m.id);
}
