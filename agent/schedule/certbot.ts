import { serviceContainer } from '../observe/observe.js';
import type { Logger } from 'pino';
import { AgentError } from '../core/errors.js';
import type { ContainerId } from '../core/ids.js';
import { LABELS } from '../core/labels.js';
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
export interface CertbotDeps {
  docker: DockerPort;
  log: Logger;
  gate: (id: ContainerId, h: HealthOptions) => Promise<GateVerdict>;
  /**
   * Runs the reload holding the service's lock: never while a transaction replaces the container
   * (its old one stopped, or its new one in the health gate) or a backup has it stopped.
   */
  withServiceLock: <T>(service: string, purpose: string, fn: () => Promise<T>) => Promise<T>;
}

export async function renewCertificates(deps: CertbotDeps, stack: string, job: CertbotJob, reloadHealth?: HealthOptions): Promise<CertbotResult> {
  const { docker } = deps;
  if (!(await docker.hasImage(job.image))) await docker.pullImage(job.image);
  const args = [...job.args, '--deploy-hook', `echo ${RENEWED_MARK} "$RENEWED_LINEAGE"`];
  const run = await docker.runOnce(job.image, args, job.volumes, { timeoutMs: CERTBOT_TIMEOUT_MS, labels: { [LABELS.managed]: 'true', [LABELS.stack]: stack, 'io.gitops-agent.role': 'certbot' }, networkMode: job.networkMode, keepEntrypoint: true });
  if (run.exitCode !== 0) throw new AgentError('JOB_FAILED', `certbot exited with code ${run.exitCode}: ${tailExcerpt(run.output)}`, { data: { exitCode: run.exitCode } });
  const renewed = run.output
    .split('\n')
    .filter((l) => l.includes(RENEWED_MARK))
    .map((l) => l.slice(l.indexOf(RENEWED_MARK) + RENEWED_MARK.length).trim());
  const result: CertbotResult = { renewed, output: tailExcerpt(run.output) };
  if (renewed.length === 0 || !job.reload) return result;
  const reload = job.reload;
  return deps.withServiceLock(reload.service, 'reload after certificate renewal', () => reloadService(deps, stack, reload, renewed, result, reloadHealth));
}

async function reloadService(deps: CertbotDeps, stack: string, reload: NonNullable<CertbotJob['reload']>, renewed: string[], result: CertbotResult, reloadHealth?: HealthOptions): Promise<CertbotResult> {
  const { docker } = deps;
  const c = await serviceContainer(docker, stack, reload.service);
  if (!c || c.status !== 'running') throw new AgentError('JOB_FAILED', `certificates renewed, but ${reload.service} is not running to reload them`, { data: { service: reload.service, status: c?.status ?? 'missing' } });
  const run = await docker.exec(c.id, reload.command, { timeoutMs: 30_000 });
  if (run.exitCode !== 0) throw new AgentError('JOB_FAILED', `certificates renewed, but "${reload.command.join(' ')}" in ${reload.service} failed with code ${run.exitCode}: ${tailExcerpt(run.output)}`, { data: { service: reload.service, exitCode: run.exitCode } });
  const verdict = await deps.gate(c.id, { ...(reloadHealth ?? { timeoutMs: 60_000, probes: [] }), stabilizationMs: Math.min(reloadHealth?.stabilizationMs ?? 5000, 5000) });
  if (!verdict.ok) throw new AgentError('HEALTH_CHECK_FAILED', `certificates renewed and ${reload.service} reloaded, but it is not healthy: ${verdict.reason}`, { data: { service: reload.service, failure: verdict.failure.kind } });
  deps.log.info({ service: reload.service, renewed }, 'Certificates renewed and service reloaded');
  return { ...result, reloaded: reload.service };
}
