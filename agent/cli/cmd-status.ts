import { displayImage } from '../core/image-ref.js';
import { formatIssue } from '../desired/issues.js';
import { shortTime, table } from './format.js';
import type { Runtime } from './runtime.js';
import { buildStatusView, type StatusView } from './status-view.js';

/** `agent status`: what runs, what is wanted, what happened last; read-only, safe beside a running agent. */
export async function statusCommand(rt: Runtime, opts: { json?: boolean }, version: string, out: (s: string) => void): Promise<void> {
  const view = await buildStatusView(rt, version);
  out(opts.json ? JSON.stringify(view, null, 2) : formatStatus(view));
}

export function formatStatus(v: StatusView): string {
  const lines: string[] = [];
  const src = v.source;
  lines.push(`Stack:       ${v.stack ?? '(unknown)'}${v.agent.runningPid ? `   agent pid ${v.agent.runningPid}` : ''}`);
  lines.push(`Source:      ${src ? `${src.kind} ${src.location}` : '(not read yet)'}${src?.revision ? `   revision ${src.revision}` : ''}${src?.lastLoadedAt ? `   read ${shortTime(src.lastLoadedAt)}` : ''}`);
  if (src?.error) lines.push(`             last read failed: ${src.error}`);
  if (v.lastAppliedRevision) lines.push(`Applied:     revision ${v.lastAppliedRevision}`);
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
    if (s.pending && s.pending.action !== 'none') details.push(`  ${s.name}: pending ${s.pending.action}: ${s.pending.reasons.join('; ')}`);
  }
  for (const t of v.interruptedTransactions) details.push(`  ${t.service}: transaction ${t.txId} interrupted at ${t.phase}; the agent finishes it on its next pass`);
  if (details.length > 0) lines.push('', 'Attention:', ...details);
  if (v.recentTransactions.length > 0) {
    lines.push('', 'Recent transactions:');
    for (const t of [...v.recentTransactions].reverse().slice(0, 5)) {
      lines.push(`  ${shortTime(t.finishedAt)}  ${t.service}  ${t.kind}  ${t.result}${t.from || t.to ? `  ${t.from ? displayImage(t.from) : '-'} -> ${t.to ? displayImage(t.to) : '-'}` : ''}${t.recovered ? '  (finished after restart)' : ''}`);
    }
  }
  return lines.join('\n');
}
