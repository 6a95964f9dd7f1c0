import { AgentError } from '../core/errors.js';
import { LABELS } from '../core/labels.js';
import type { DockerPort } from '../ports/docker.js';

const CLEAR_TIMEOUT_MS = 10 * 60 * 1000;
// Copying a large volume back takes as long as it takes: stopping half-way would leave it half-filled.
const COPY_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/**
 * Empties a volume before a restore, so that files written after the backup do not survive it:
 * a throwaway container of the service's own image with the volume mounted and no network.
 * Only sh and rm are needed (busybox has them): hidden files included, the mount point kept.
 * With `copyFrom` (another volume, mounted at /from), its content is then copied in, owners kept.
 */
export async function clearVolume(docker: DockerPort, v: { image: string; volumeName: string; target: string; stack: string; copyFrom?: string }): Promise<void> {
  const script = v.copyFrom ? 'rm -rf -- "$0"/* "$0"/.[!.]* "$0"/..?* && cp -a /from/. "$0"/' : 'rm -rf -- "$0"/* "$0"/.[!.]* "$0"/..?*';
  const mounts = [{ type: 'volume' as const, source: v.volumeName, target: v.target, readOnly: false }, ...(v.copyFrom ? [{ type: 'volume' as const, source: v.copyFrom, target: '/from', readOnly: true }] : [])];
  const r = await docker.runOnce(v.image, ['/bin/sh', '-c', script, v.target], mounts, {
    timeoutMs: v.copyFrom ? COPY_TIMEOUT_MS : CLEAR_TIMEOUT_MS,
    user: '0',
    labels: { [LABELS.managed]: 'true', [LABELS.stack]: v.stack, 'io.gitops-agent.role': 'restore-helper' },
  });
  if (r.exitCode !== 0) throw new AgentError('BACKUP_FAILED', `cannot ${v.copyFrom ? 'fill' : 'empty'} volume ${v.volumeName} for the restore (the image needs /bin/sh, rm${v.copyFrom ? ' and cp' : ''}): exit ${r.exitCode} ${r.output}`, { data: { volume: v.volumeName, emptied: true } });
}
