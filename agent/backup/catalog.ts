import { AgentError } from '../core/errors.js';
import { type BackupManifest } from '../model/backup.js';
import type { BackupRepository } from '../ports/backup-repository.js';

/** The backup with this id, on any host/stack/service of the repository. */
export async function findBackup(repo: BackupRepository, id: string, prefix = ''): Promise<BackupManifest> {
  const found = (await repo.list(prefix)).filter((m) => m.id === id);
  if (found.length === 0) throw new AgentError('USAGE', `no complete backup with id ${id} in ${repo.location}`);
  if (found.length > 1) throw new AgentError('USAGE', `backup id ${id} is ambiguous (${found.map((m) => `${m.host}/${m.stack}/${m.service}`).join(', ')})`);
  return found[0] as BackupManifest;
}
