import { randomBytes } from 'node:crypto';
import type { BackupManifest } from '../model/backup.js';

export const MANIFEST_FILE = 'manifest.json';

export function newBackupId(now: number): string {
  return `${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

/** `<host>/<stack>/<service>/`: the prefix of one service's backups, so that hosts and stacks can share a bucket. */
export function servicePrefix(host: string, stack: string, service: string): string {
  return `${host}/${stack}/${service}/`;
}

export function backupKey(host: string, stack: string, service: string, id: string, file: string): string {
  return `${servicePrefix(host, stack, service)}${id}/${file}`;
}

export function totalBytes(m: BackupManifest): number {
  return m.artifacts.reduce((n, a) => n + a.bytes, 0);
}
