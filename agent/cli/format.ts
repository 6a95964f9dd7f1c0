import { displayImage } from '../core/image-ref.js';
import { formatIssue, type ValidationIssue } from '../model/issues.js';
import type { Plan } from '../model/plan.js';

/** A plain text table: columns padded to the widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function formatPlan(plan: Plan): string {
  const lines = [`Plan for stack ${plan.stack} at revision ${plan.revision}: ${plan.changes === 0 ? 'no changes' : `${plan.changes} change(s)`}`];
  const rows = plan.steps.map((s) => [s.service, s.action, s.from ? displayImage(s.from.image) : '-', s.to ? displayImage(s.to.image) : '-', s.reasons.join('; ')]);
  if (rows.length > 0) lines.push('', table(['SERVICE', 'ACTION', 'FROM', 'TO', 'REASON'], rows));
  const nets = plan.networks.filter((n) => n.cause !== 'in-sync');
  if (nets.length > 0) lines.push('', table(['NETWORK', 'ACTION', 'REASON'], nets.map((n) => [n.name, n.action, n.reasons.join('; ')])));
  return lines.join('\n');
}

export function formatIssues(issues: ValidationIssue[]): string {
  return issues.map(formatIssue).join('\n');
}

export function shortTime(iso: string | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
