import type { RenderedMessage } from './channel.js';
import type { AgentEvent, AgentEventType } from './events.js';

/** Removes secrets from a text meant for people (given by the caller: it knows the secrets). */
export type Redact = (text: string) => string;

/** What a reminder adds: how many repeats were held back, since when. */
export interface ReminderInfo {
  /** Repeats suppressed since `since`. */
  count: number;
  /** ISO time of the last message sent for this problem. */
  since: string;
  /** ISO time of the first message for this problem, when known. */
  firstAt?: string;
}

const SUBJECT_PREFIX = '[gitops-agent]';
const MAX_SUBJECT = 200;
const MAX_FIELD = 4000;

const LABELS: Record<AgentEventType, string> = {
  'update-applied': 'Update applied',
  'update-failed': 'Update failed',
  'revert-pushed': 'Revert commit pushed',
  'revert-refused': 'Revert push refused',
  'backup-failed': 'Backup failed',
  'drill-passed': 'Restore drill passed',
  'drill-failed': 'Restore drill failed',
  'desired-state-invalid': 'Desired state invalid',
  'certificate-renewed': 'Certificate renewed',
  'certificate-renewal-failed': 'Certificate renewal failed',
  'dependency-unreachable': 'Dependency unreachable',
};

// Used when the producer gives no `action`: every message must say what to do next.
const DEFAULT_ACTIONS: Record<AgentEventType, string> = {
  'update-applied': 'Nothing to do. Check the service if you expected a different version.',
  'update-failed':
    'The old version keeps running and the new one is held. Read the reason above and `agent status`; fix the image or its configuration in Git, or revert the change.',
  'revert-pushed': 'Review the revert commit in Git; push a fixed version when ready.',
  'revert-refused':
    'The rollback happened on the host but Git still asks for the failed version: revert it in Git yourself, or allow the agent to push (branch protection, hooks, credentials).',
  'backup-failed': 'Updates that need this backup are not applied. Check the backup store and `agent backup list`.',
  'drill-passed': 'Nothing to do: the latest backup restores.',
  'drill-failed': 'The latest backup could not be restored: fix the cause and run `agent backup drill`.',
  'desired-state-invalid': 'Nothing is applied until the desired state is fixed: run `agent validate` and fix the commit.',
  'certificate-renewed': 'Nothing to do.',
  'certificate-renewal-failed': 'Renew the certificate before it expires: check DNS, the ACME account and the logs.',
  'dependency-unreachable': 'Check the service named above; the agent retries and tells when it is reachable again through `agent status`.',
};

/** Replaces the user info of every URL (https://user:token@host -> https://***@host). */
export function stripUrlUserInfo(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@');
}

/** The caller's redaction, then URL user info; never throws (a failing redact drops the text). */
function safe(redact: Redact): Redact {
  return (text) => {
    try {
      return stripUrlUserInfo(redact(text));
    } catch {
      return '[text withheld: redaction failed]';
    }
  };
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function oneLine(text: string): string {
  // a line break in a subject could inject mail headers
  return text.replace(/[\r\n\t]+/g, ' ').replace(/\s{2,}/g, ' ').trim();
}

function indent(text: string): string {
  return clip(text.trim(), MAX_FIELD)
    .split(/\r?\n/)
    .map((l) => `  ${l}`)
    .join('\n');
}

/** "2024-05-01T10:00:00.000Z" -> "2024-05-01 10:00:00 UTC"; anything else as it is. */
export function formatTime(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]} UTC` : iso;
}

function subjectOf(event: AgentEvent, r: Redact, prefix = ''): string {
  return clip(oneLine(r(`${SUBJECT_PREFIX} ${event.host}/${event.stack}: ${prefix}${event.title}`)), MAX_SUBJECT);
}

function body(event: AgentEvent, r: Redact, intro: string[]): string {
  const lines: string[] = [...intro, oneLine(event.title), ''];
  const facts: [string, string | undefined][] = [
    ['What', `${LABELS[event.type] ?? event.type} (${event.severity})`],
    ['Host', event.host],
    ['Stack', event.stack],
    ['Service', event.service],
    ['Version', event.from || event.to ? `${event.from ?? '(none)'} -> ${event.to ?? '(none)'}` : undefined],
    ['When', formatTime(event.at)],
  ];
  for (const [k, v] of facts) if (v) lines.push(`${`${k}:`.padEnd(9)}${oneLine(v)}`);
  if (event.reason?.trim()) lines.push('', 'Why:', indent(event.reason));
  lines.push('', 'What to do next:', indent(event.action?.trim() || DEFAULT_ACTIONS[event.type] || 'Check `agent status`.'));
  const details = Object.entries(event.details ?? {});
  if (details.length) {
    lines.push('', 'Details:');
    for (const [k, v] of details) lines.push(`  ${oneLine(k)}: ${oneLine(String(v))}`);
  }
  lines.push('', '-- ', `gitops-agent on ${event.host}; event ${event.type}, key ${event.dedupKey}`);
  return r(lines.join('\n'));
}

/** The message for an event: subject line and plain text, redacted. */
export function renderMessage(event: AgentEvent, redact: Redact = (t) => t): RenderedMessage {
  const r = safe(redact);
  return { subject: subjectOf(event, r), text: body(event, r, []) };
}

/** The message for a problem that keeps happening: what the first said, plus how often since when. */
export function renderReminder(event: AgentEvent, info: ReminderInfo, redact: Redact = (t) => t): RenderedMessage {
  const r = safe(redact);
  const times = info.count === 1 ? 'once' : `${info.count} times`;
  const intro = [
    `Reminder: this happened again ${times} since ${formatTime(info.since)}${info.firstAt ? ` (first reported ${formatTime(info.firstAt)})` : ''}.`,
    'The repeats were not sent one by one; this is the latest.',
    '',
  ];
  return { subject: subjectOf(event, r, `reminder (${info.count} more): `), text: body(event, r, intro) };
}

/** A copy of the event with every text redacted: channels may send the event itself (webhook json). */
export function redactEvent(event: AgentEvent, redact: Redact = (t) => t): AgentEvent {
  const r = safe(redact);
  const out: AgentEvent = { ...event, host: r(event.host), stack: r(event.stack), title: r(event.title), dedupKey: r(event.dedupKey) };
  for (const k of ['service', 'from', 'to', 'reason', 'action'] as const) {
    const v = event[k];
    if (v !== undefined) out[k] = r(String(v));
  }
  if (event.details) {
    out.details = {};
    for (const [k, v] of Object.entries(event.details)) out.details[r(k)] = r(String(v));
  }
  return out;
}

/** Fills what a careless producer left out, so that rendering and de-duplication always work. */
export function normalizeEvent(event: AgentEvent, now: number): AgentEvent {
  const e = structuredClone(event);
  e.host ||= '(unknown host)';
  e.stack ||= '(unknown stack)';
  e.title ||= e.type;
  e.at ||= new Date(now).toISOString();
  e.dedupKey ||= [e.type, e.host, e.stack, e.service ?? ''].join(':');
  return e;
}
