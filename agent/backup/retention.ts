import type { Logger } from 'pino';
import type { BackupPolicy } from '../model/desired.js';
import { servicePrefix } from './manifest.js';
import { type BackupManifest } from '../model/backup.js';
import type { BackupRepository } from '../ports/backup-repository.js';

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

/**
 * Deletes the expired backups of a service. It runs before a backup is made (out of an update's
 * downtime window), so that backup counts as one of the `keep`: `keep - 1` of the existing ones
 * stay, and always the newest complete one, in case the backup about to be made fails.
 */
export async function applyRetention(repo: BackupRepository, scope: { host: string; stack: string; service: string }, policy: BackupPolicy, now: number, protectedIds: ReadonlySet<string>, log: Logger): Promise<string[]> {
  const before = { retention: { ...policy.retention, keep: Math.max(1, policy.retention.keep - 1) } };
  const expired = selectExpired(await repo.list(servicePrefix(scope.host, scope.stack, scope.service)), before, now, protectedIds);
  await repo.remove(expired);
  if (expired.length > 0) {
    log.info({ service: scope.service, deleted: expired.map((m) => m.id) }, 'Old backups deleted by retention');
    // restic: the data only they referenced is freed now (and what interrupted backups left)
    await repo.maintain();
  }
  return expired.map((m) => m.id);
}
