import { displayImage } from '../core/image-ref.js';
import { formatIssue } from '../model/issues.js';
import { shortTime, table } from './format.js';
import { formatBytes } from './progress.js';
import type { ReadOnlyRuntime } from './runtime.js';
import { buildStatusView, type StatusView } from './status-view.js';

/** `agent status`: what runs, what is wanted, what happened last; read-only, safe beside a running agent. */
export async function statusCommand(rt: ReadOnlyRuntime, opts: { json?: boolean }, version: string, out: (s: string) => void): Promise<void> {
  const view = await buildStatusView(rt, version);
  out(opts.json ? JSON.stringify(view, null, 2) : formatStatus(view));
}

export function formatStatus(v: StatusView): string {
  const lines: string[] = [];
  const src = v.source;
  lines.push(`Stack:       ${v.stack ?? '(unknown)'}${v.agent.runningPid ? `   agent pid ${v.agent.runningPid} on ${v.agent.runningHost ?? '?'}` : ''}`);
  if (src?.kind === 'git') {
    lines.push(`Repository:  ${src.location}   branch ${src.branch ?? '?'}   path ${src.path || '/'}`);
    lines.push(`Fetched:     ${src.commit ? describeCommit(src.commit) : src.revision ?? '-'}   last fetch ${shortTime(src.lastLoadedAt)}`);
  } else {
    lines.push(`Source:      ${src ? `${src.kind} ${src.location}` : '(not read yet)'}${src?.revision ? `   revision ${src.revision}` : ''}${src?.lastLoadedAt ? `   read ${shortTime(src.lastLoadedAt)}` : ''}`);
  }
  if (v.notFetched) lines.push(`Remote:      branch ${src?.branch ?? '?'} is at ${v.notFetched.revision.slice(0, 12)}, not fetched by the agent yet: it fetches at every interval and on the webhook`);
  if (src?.error) lines.push(`             last ${src.kind === 'git' ? 'fetch' : 'read'} FAILED ${shortTime(src.errorAt)}: ${src.error}`);
  if (v.lastAppliedCommit) lines.push(`Applied:     ${describeCommit(v.lastAppliedCommit)}`);
  else if (v.lastAppliedRevision) lines.push(`Applied:     revision ${v.lastAppliedRevision}`);
  if (v.lastReconcile) lines.push(`Reconcile:   ${v.lastReconcile.result} at ${shortTime(v.lastReconcile.finishedAt)}: ${v.lastReconcile.message}`);
  for (const c of v.conditions) lines.push(`${`${c.type}:`.padEnd(13)}${c.status} (${c.reason}) ${c.message}`);
  if (v.liveErrors.length > 0) lines.push(`Live view: unavailable (${v.liveErrors.join('; ')}); showing the recorded state`);
  if (v.invalid) {
    lines.push('', `Desired state ${v.invalid.revision} is INVALID: nothing was applied, running services are untouched.`);
    for (const i of v.invalid.issues) lines.push(`  ${formatIssue(i)}`);
  }
  lines.push('');
  const rows = v.services.map((s) => [
    s.name,
    s.policy ?? '-',
    s.desired ? displayImage(s.desired.image) : '-',
    s.running ? displayImage(s.running.image) : '-',
    s.running ? `${s.running.status}${s.running.health !== 'none' ? `/${s.running.health}` : ''}` : 'absent',
    s.lastTransaction ? `${s.lastTransaction.result} ${shortTime(s.lastTransaction.finishedAt)}` : '-',
  ]);
  lines.push(table(['SERVICE', 'POLICY', 'DESIRED', 'RUNNING', 'STATE', 'LAST TRANSACTION'], rows));

  const details: string[] = [];
  for (const s of v.services) {
    if (s.lastTransaction?.reason && s.lastTransaction.result !== 'succeeded') details.push(`  ${s.name}: ${s.lastTransaction.reason}`);
    if (s.held) details.push(`  ${s.name}: held ${displayImage(s.held.image)} (failed ${shortTime(s.held.at)}); change the desired state to retry`);
    if (s.waiting) details.push(`  ${s.name}: ${s.waiting}`);
    if (s.revert?.state === 'pushed') details.push(`  ${s.name}: revert commit ${s.revert.commit?.slice(0, 12)} pushed (reverts ${s.revert.reverts?.slice(0, 12)})${s.revert.quarantined ? `; ${s.revert.quarantined} quarantined in renovate.json` : ''}`);
    else if (s.revert) details.push(`  ${s.name}: revert commit ${s.revert.state.toUpperCase()}${s.revert.reason ? `: ${s.revert.reason}` : ''}${s.revert.nextAttemptAt ? ` (next attempt ${shortTime(s.revert.nextAttemptAt)})` : ''}`);
    if (s.pending && s.pending.action !== 'none') details.push(`  ${s.name}: pending ${s.pending.action}: ${s.pending.reasons.join('; ')}`);
    else if (s.pending?.nextWindow) details.push(`  ${s.name}: update pending until its maintenance window opens (${shortTime(s.pending.nextWindow)}): ${s.pending.reasons.join('; ')}`);
  }
  for (const t of v.interruptedTransactions) details.push(`  ${t.service}: transaction ${t.txId} interrupted at ${t.phase}; the agent finishes it on its next pass`);
  if (details.length > 0) lines.push('', 'Attention:', ...details);
  if (v.jobs.length > 0) {
    lines.push('', 'Scheduled jobs:');
    lines.push(table(['JOB', 'SCHEDULE', 'NEXT RUN', 'LAST RUN', 'RESULT'], v.jobs.map((j) => [j.name, `${j.schedule} (${j.timezone})`, shortTime(j.nextRunAt), shortTime(j.lastRunAt), j.lastResult ? `${j.lastResult}${j.lastMessage ? `: ${j.lastMessage}` : ''}` : '-'])).split('\n').map((l) => `  ${l}`).join('\n'));
  }
  const backedUp = v.services.filter((s) => s.lastBackup);
  if (backedUp.length > 0) {
    lines.push('', `Backups (${v.backupStore}):`);
    for (const s of backedUp) lines.push(`  ${s.name}: last ${s.lastBackup?.reason} backup ${s.lastBackup?.id} at ${shortTime(s.lastBackup?.createdAt)}, ${formatBytes(s.lastBackup?.bytes ?? 0)}${s.lastBackup?.added !== undefined ? ` (${formatBytes(s.lastBackup.added)} new in the repository)` : ''}`);
  }
  const drilled = v.services.filter((s) => s.lastDrill);
  if (drilled.length > 0) {
    lines.push('', 'Restore drills:');
    for (const s of drilled) {
      const d = s.lastDrill as NonNullable<typeof s.lastDrill>;
      lines.push(`  ${s.name}: last restore drill ${shortTime(d.at)} ${d.ok ? 'passed' : 'FAILED'}${d.backup ? ` (backup ${d.backup})` : ''}, ${formatBytes(d.bytes)}, ${Math.round(d.durationMs / 1000)} s${d.ok ? '' : `: ${d.error ?? ''}`}`);
    }
  }
  if (v.notifications.length > 0) {
    lines.push('', 'Notifications:');
    for (const n of v.notifications) lines.push(`  ${n.name}: ${n.sent} sent, ${n.suppressed} repeats held back, ${n.failed} failed${n.lastError ? `; LAST FAILURE ${shortTime(n.lastErrorAt)}: ${n.lastError}` : ''}${n.lastSuccessAt ? `; last sent ${shortTime(n.lastSuccessAt)}` : ''}`);
  }
  if (v.quarantined.length > 0) {
    lines.push('', 'Quarantined versions (renovate.json; remove the rule to allow one again):');
    for (const q of v.quarantined) lines.push(`  ${q.service ?? q.image} ${q.version}${q.blocking ? ' (ASKED FOR BY THE DESIRED STATE: not applied)' : ''}: ${q.description}`);
  }
  if (v.recentTransactions.length > 0) {
    lines.push('', 'Recent transactions:');
    for (const t of [...v.recentTransactions].reverse().slice(0, 5)) {
      lines.push(`  ${shortTime(t.finishedAt)}  ${t.service}  ${t.kind}  ${t.result}${t.from || t.to ? `  ${t.from ? displayImage(t.from) : '-'} -> ${t.to ? displayImage(t.to) : '-'}` : ''}${t.recovered ? '  (finished after restart)' : ''}`);
    }
  }
  return lines.join('\n');
}

function describeCommit(c: { sha: string; subject: string; author: string; time: string }): string {
  return `${c.sha.slice(0, 12)} "${c.subject}" by ${c.author} at ${shortTime(c.time)}`;
}
