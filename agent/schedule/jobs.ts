import { AgentError, errorMessage } from '../core/errors.js';
import { backupService, withServiceLock, type OperationDeps } from '../backup/operations.js';
import type { DesiredState, JobSpec } from '../model/desired.js';
import { renewCertificates, type CertbotResult } from './certbot.js';
import { drillService } from '../backup/drill.js';
import type { DrillResult } from '../model/backup.js';

export interface JobDeps {
  operations: () => OperationDeps;
  /** Records a drill's result (state, metrics, notifications). */
  onDrill?: (result: DrillResult) => Promise<void>;
  /** Told about certificate renewals (renewed, or failed). */
  onCertificates?: (job: JobSpec, outcome: { ok: true; result: CertbotResult } | { ok: false; error: string }) => void;
}

/** What a scheduled job does; the message is recorded with the job's result, a throw fails it. */
export async function runJob(deps: JobDeps, desired: DesiredState | undefined, job: JobSpec, signal: AbortSignal): Promise<string> {
  if (!desired) throw new AgentError('DEPENDENCY_NOT_READY', 'no valid desired state has been read yet', { data: { job: job.name } });
  if (job.backup) {
    const services = job.backup.services.length > 0 ? job.backup.services : Object.values(desired.services).filter((s) => s.agent.backup).map((s) => s.name);
    const ops = deps.operations();
    const quiet = { ...ops, backup: { ...ops.backup, onProgress: undefined } };
    const done: string[] = [];
    const failed: string[] = [];
    for (const service of services) {
      try {
        done.push(`${service}: ${(await backupService(quiet, desired, service, 'scheduled', signal)).id}`);
      } catch (err) {
        failed.push(`${service}: ${errorMessage(err)}`);
      }
    }
    if (failed.length > 0) throw new AgentError('BACKUP_FAILED', `backup failed for ${failed.join('; ')}${done.length ? `; done: ${done.join(', ')}` : ''}`, { data: { job: job.name, failed: failed.length, done: done.length } });
    return `backed up ${done.join(', ')}`;
  }
  if (job.drill) {
    const results = await drillServices(deps, desired, job.drill.services, signal);
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0) throw new AgentError('BACKUP_FAILED', `restore drill failed for ${failed.map((r) => `${r.service}: ${r.error ?? 'failed'}`).join('; ')}`, { data: { job: job.name, failed: failed.length, passed: results.length - failed.length } });
    return `restore drill passed: ${results.map((r) => `${r.service} (${r.backup})`).join(', ')}`;
  }
  if (job.certbot) {
    const ops = deps.operations();
    const reload = job.certbot.reload ? desired.services[job.certbot.reload.service]?.agent.health : undefined;
    try {
      const result = await renewCertificates({ docker: ops.backup.docker, log: ops.backup.log, gate: ops.gate, withServiceLock: (service, purpose, fn) => withServiceLock(ops, service, purpose, fn) }, desired.stack, job.certbot, reload);
      deps.onCertificates?.(job, { ok: true, result });
      return result.renewed.length === 0 ? 'no certificate was due for renewal' : `renewed ${result.renewed.join(', ')}${result.reloaded ? `; ${result.reloaded} reloaded and healthy` : ''}`;
    } catch (err) {
      deps.onCertificates?.(job, { ok: false, error: errorMessage(err) });
      throw err;
    }
  }
  return 'nothing to do';
}

/** Drills each service (default: every one with x-agent.backup), one after the other, and records each result. */
export async function drillServices(deps: Pick<JobDeps, 'operations' | 'onDrill'>, desired: DesiredState, services: string[], signal?: AbortSignal): Promise<DrillResult[]> {
  const names = services.length > 0 ? services : Object.values(desired.services).filter((s) => s.agent.backup).map((s) => s.name);
  const ctx = { ...deps.operations().backup, stack: desired.stack, onProgress: undefined };
  const results: DrillResult[] = [];
  for (const service of names) {
    const r = await drillService(ctx, desired, service, signal);
    await deps.onDrill?.(r);
    results.push(r);
  }
  return results;
}
