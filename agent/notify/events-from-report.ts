import { formatBytes } from '../core/bytes.js';
import { displayImage } from '../core/image-ref.js';
import type { DrillResult } from '../model/backup.js';
import type { DesiredState, JobSpec } from '../model/desired.js';
import type { AgentEvent } from './events.js';
import type { CertbotResult } from '../schedule/certbot.js';
import type { TransactionRecord } from '../model/records.js';
import type { ReconcileReport } from '../model/report.js';

export interface EventScope {
  host: string;
  stack: string;
  at: string;
}

/**
 * What a reconcile pass tells people: manual-policy updates applied, updates that failed or
 * were rolled back, revert commits pushed or refused, an invalid desired state. Pure: the
 * notifier routes, renders and de-duplicates.
 */
export function eventsFromReport(r: ReconcileReport, scope: EventScope): AgentEvent[] {
  const events: AgentEvent[] = [];
  const stack = r.desired?.stack ?? scope.stack;
  const base = { host: scope.host, stack, at: scope.at };
  for (const t of r.transactions) {
    const e = eventFromTransaction(t, r.desired, base);
    if (e) events.push(e);
  }
  for (const rv of r.reverts ?? []) {
    const change = `${displayImage(rv.request.goodImage)} -> ${displayImage(rv.request.failedImage)}`;
    if (rv.status === 'pushed') {
      events.push({
        ...base,
        type: 'revert-pushed',
        severity: 'warning',
        service: rv.service,
        from: rv.request.failedImage,
        to: rv.request.goodImage,
        title: `${rv.service}: revert commit pushed after the failed update ${change}`,
        reason: rv.request.reason,
        action: rv.quarantined ? `${rv.quarantined} is quarantined in renovate.json: delete that rule to allow it again. Git and the host agree again.` : 'Git and the host agree again; nothing to do unless you want to retry.',
        dedupKey: `revert-pushed:${rv.service}:${rv.request.failedHash}`,
        details: { commit: rv.commit ?? '', reverts: rv.reverts ?? '' },
      });
    } else {
      events.push({
        ...base,
        type: 'revert-refused',
        severity: 'critical',
        service: rv.service,
        from: rv.request.failedImage,
        to: rv.request.goodImage,
        title: `${rv.service}: the revert commit could not be pushed; Git still names ${displayImage(rv.request.failedImage)}`,
        reason: rv.reason,
        action: `The service is held on ${displayImage(rv.request.goodImage)}. Revert the update in Git yourself (git revert), or let the agent's user push to the branch; it retries every 10 minutes.`,
        dedupKey: `revert-refused:${rv.service}:${rv.request.failedHash}`,
      });
    }
  }
  if (r.result === 'invalid' && r.issues) {
    const errors = r.issues.filter((i) => i.severity !== 'warning');
    events.push({
      ...base,
      type: 'desired-state-invalid',
      severity: 'warning',
      title: `the desired state at ${r.revision?.slice(0, 12) ?? '?'} is refused: nothing was applied`,
      reason: errors.slice(0, 10).map((i) => `${i.file}:${i.line}:${i.column}: ${i.pointer ? `${i.pointer}: ` : ''}${i.message}`).join('\n'),
      action: 'Fix the files and push a new commit (agent validate shows every error). What runs keeps running meanwhile.',
      dedupKey: `invalid:${r.revision ?? ''}`,
    });
  }
  return events;
}

function eventFromTransaction(t: TransactionRecord, desired: DesiredState | undefined, base: Omit<AgentEvent, 'type' | 'severity' | 'title' | 'dedupKey'>): AgentEvent | undefined {
  const change = `${t.from ? displayImage(t.from) : 'nothing'} -> ${t.to ? displayImage(t.to) : 'nothing'}`;
  const common = { ...base, service: t.service, ...(t.from ? { from: t.from } : {}), ...(t.to ? { to: t.to } : {}), details: { transaction: t.txId, revision: t.revision, ...(t.backup ? { backup: t.backup } : {}) } };
  if (t.result === 'succeeded') {
    if (t.kind !== 'update' || desired?.services[t.service]?.agent.policy !== 'manual') return undefined;
    return { ...common, type: 'update-applied', severity: 'info', title: `${t.service} updated ${change}`, action: 'Nothing to do. To roll back: git revert the change.', dedupKey: `applied:${t.txId}` };
  }
  if (t.result === 'interrupted') return undefined;
  if (t.code === 'BACKUP_FAILED') {
    return { ...common, type: 'backup-failed', severity: 'warning', title: `${t.service}: the backup before the update ${change} failed; the update was aborted, nothing changed`, ...(t.reason ? { reason: t.reason } : {}), action: 'Check the backup store (space, reachability); the update is tried again at the next pass.', dedupKey: `backup-failed:update:${t.service}:${t.revision}` };
  }
  const verb = t.result === 'rolled-back' ? 'failed and was rolled back' : t.result === 'rollback-failed' ? 'failed, and the rollback failed too' : 'failed';
  return {
    ...common,
    type: 'update-failed',
    severity: t.result === 'rollback-failed' ? 'critical' : 'warning',
    title: `${t.service} update ${change} ${verb}`,
    ...(t.reason ? { reason: t.reason } : {}),
    action:
      t.result === 'rollback-failed'
        ? 'Look at the service now: the previous version did not come back healthy. agent status and agent backup list show what there is to restore.'
        : 'The failed version is held and will not be retried; fix it or revert it in Git. agent status shows the details.',
    // The same update failing again (a transient cause, retried each pass) is one problem; another
    // desired state (another spec, even with the same image) is another one.
    dedupKey: `update-failed:${t.service}:${t.to ?? ''}:${t.revision}`,
  };
}

/** A scheduled backup job that failed. */
export function eventFromBackupJob(job: JobSpec, error: string, scope: EventScope): AgentEvent {
  return { ...scope, type: 'backup-failed', severity: 'warning', title: `scheduled backup ${job.name} failed`, reason: error, action: 'Check the backup store and the services named; the next run retries. agent backup create runs one now.', dedupKey: `backup-failed:job:${job.name}` };
}

/** "gitea: last restore drill 2026-12-01 03:10Z passed, 1.2 GiB, 14 s". */
export function eventFromDrill(d: DrillResult, scope: EventScope): AgentEvent {
  const when = `${d.at.slice(0, 16).replace('T', ' ')}Z`;
  const size = formatBytes(d.bytes);
  const secs = `${Math.round(d.durationMs / 1000)} s`;
  if (d.ok) return { ...scope, type: 'drill-passed', severity: 'info', service: d.service, title: `${d.service}: last restore drill ${when} passed, ${size}, ${secs}`, reason: d.checks.join('; '), dedupKey: `drill:${d.service}:${d.at}` };
  return { ...scope, type: 'drill-failed', severity: 'critical', service: d.service, title: `${d.service}: restore drill ${when} FAILED${d.backup ? ` on backup ${d.backup}` : ''}`, ...(d.error ? { reason: d.error } : {}), action: 'The latest backup of this service could not be restored: fix the cause and run agent backup drill; until then its updates warn in the plan.', dedupKey: `drill-failed:${d.service}` };
}


export function eventFromCertificates(job: JobSpec, outcome: { ok: true; result: CertbotResult } | { ok: false; error: string }, scope: EventScope): AgentEvent | undefined {
  if (outcome.ok) {
    if (outcome.result.renewed.length === 0) return undefined;
    return { ...scope, type: 'certificate-renewed', severity: 'info', ...(outcome.result.reloaded ? { service: outcome.result.reloaded } : {}), title: `certificates renewed: ${outcome.result.renewed.join(', ')}${outcome.result.reloaded ? `; ${outcome.result.reloaded} reloaded and healthy` : ''}`, dedupKey: `cert-renewed:${job.name}:${scope.at}` };
  }
  return { ...scope, type: 'certificate-renewal-failed', severity: 'critical', title: `certificate renewal ${job.name} failed`, reason: outcome.error, action: 'Run the job again after fixing the cause (certbot output above); certificates expire if this keeps failing.', dedupKey: `cert-failed:${job.name}` };
}

/**
 * Notices when the Docker engine or the source stays unreachable longer than a threshold: one
 * event then (the notifier sends reminders at most hourly), reset when it answers again.
 */
export function createUnreachableWatch(thresholdMs: number) {
  const since = new Map<string, number>();
  return (r: ReconcileReport, scope: EventScope, now: number): AgentEvent[] => {
    const down = new Map<string, string>();
    if (r.blocked?.reason === 'DockerUnavailable') down.set('docker', r.blocked.message);
    if (r.sourceError) down.set('source', r.sourceError);
    else if (r.blocked?.reason === 'SourceUnavailable') down.set('source', r.blocked.message);
    for (const key of [...since.keys()]) if (!down.has(key)) since.delete(key);
    const events: AgentEvent[] = [];
    for (const [key, message] of down) {
      const first = since.get(key) ?? now;
      since.set(key, first);
      if (now - first < thresholdMs) continue;
      const what = key === 'docker' ? 'the Docker engine' : 'the desired-state source';
      events.push({ ...scope, type: 'dependency-unreachable', severity: 'critical', title: `${what} has been unreachable for ${Math.round((now - first) / 60_000)} min`, reason: message, action: key === 'docker' ? 'Services keep running as they are, but nothing is applied or repaired. Check dockerd.' : 'Services keep running; the agent applies the last commit it fetched. Check the Git server and the credentials.', dedupKey: `unreachable:${key}` });
    }
    return events;
  };
}
