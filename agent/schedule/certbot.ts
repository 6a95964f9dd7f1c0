import type { Logger } from 'pino';
import { AgentError } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import { LABELS, containerName } from '../core/labels.js';
import type { CertbotJob, HealthOptions } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';
import type { GateVerdict } from '../model/health.js';
import { tailExcerpt } from '../health/probes.js';

const RENEWED_MARK = 'GITOPS_AGENT_RENEWED';
const CERTBOT_TIMEOUT_MS = 15 * 60 * 1000;

export interface CertbotResult {
  renewed: string[];
  reloaded?: string;
  output: string;
}

/**
 * Certificate renewal: runs the certbot image's `renew` with a deploy hook that prints a mark
 * for each certificate it actually renewed (certbot runs deploy hooks only then). When one was
 * renewed, the service using them is reloaded through a Docker exec (`nginx -s reload`) and
 * must pass its health gate; nothing is reloaded when nothing changed.
 */
export async function renewCertificates(deps: { docker: DockerPort; log: Logger; gate: (id: ContainerId, h: HealthOptions) => Promise<GateVerdict> }, stack: string, job: CertbotJob, reloadHealth?: HealthOptions): Promise<CertbotResult> {
  const { docker } = deps;
  if (!(await docker.hasImage(job.image))) await docker.pullImage(job.image);
  const args = [...job.args, '--deploy-hook', `echo ${RENEWED_MARK} "$RENEWED_LINEAGE"`];
  const run = await docker.runOnce(job.image, args, job.volumes, { timeoutMs: CERTBOT_TIMEOUT_MS, labels: { [LABELS.managed]: 'true', [LABELS.stack]: stack, 'io.gitops-agent.role': 'certbot' }, networkMode: job.networkMode, keepEntrypoint: true });
  if (run.exitCode !== 0) throw new AgentError('INTERNAL', `certbot exited with code ${run.exitCode}: ${tailExcerpt(run.output)}`, { class: 'transient', data: { exitCode: run.exitCode } });
  const renewed = run.output
    .split('\n')
    .filter((l) => l.includes(RENEWED_MARK))
    .map((l) => l.slice(l.indexOf(RENEWED_MARK) + RENEWED_MARK.length).trim());
  const result: CertbotResult = { renewed, output: tailExcerpt(run.output) };
  if (renewed.length === 0 || !job.reload) return result;

  const c = await docker.inspectContainer(containerName(stack, job.reload.service));
  if (!c || c.status !== 'running') throw new AgentError('INTERNAL', `certificates renewed, but ${job.reload.service} is not running to reload them`, { class: 'transient' });
  const reload = await docker.exec(c.id, job.reload.command, { timeoutMs: 30_000 });
  if (reload.exitCode !== 0) throw new AgentError('INTERNAL', `certificates renewed, but "${job.reload.command.join(' ')}" in ${job.reload.service} failed with code ${reload.exitCode}: ${tailExcerpt(reload.output)}`, { class: 'transient' });
  const verdict = await deps.gate(c.id, { ...(reloadHealth ?? { timeoutMs: 60_000, probes: [] }), stabilizationMs: Math.min(reloadHealth?.stabilizationMs ?? 5000, 5000) });
  if (!verdict.ok) throw new AgentError('HEALTH_CHECK_FAILED', `certificates renewed and ${job.reload.service} reloaded, but it is not healthy: ${verdict.reason}`);
  deps.log.info({ service: job.reload.service, renewed }, 'Certificates renewed and service reloaded');
  return { ...result, reloaded: job.reload.service };
}
