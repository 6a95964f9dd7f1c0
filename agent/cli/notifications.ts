import { isoTime } from '../core/clock.js';
import { notificationSettings } from '../notify/config.js';
import { createUnreachableWatch, eventFromBackupJob, eventFromCertificates, eventFromDrill, eventsFromReport } from '../notify/events-from-report.js';
import type { Runtime } from './runtime.js';

/**
 * Routes what the agent does to the notification channels: each reconcile pass's events,
 * failed scheduled backups, certificate renewals, and dependencies unreachable for longer than
 * `notifications.unreachableAfter`. Nothing when no channel is configured.
 */
export async function wireNotifications(rt: Runtime): Promise<void> {
  const notifier = await rt.notifier();
  if (!notifier) return;
  const scope = () => ({ host: rt.config.host, stack: rt.config.stack, at: isoTime(rt.clock) });
  const unreachable = createUnreachableWatch(notificationSettings(rt.config.notifications).unreachableAfterMs);
  const previous = { ...rt.hooks };
  rt.hooks.onReconcile = (r) => {
    previous.onReconcile?.(r);
    const s = { ...scope(), stack: r.desired?.stack ?? rt.config.stack };
    for (const e of [...eventsFromReport(r, s), ...unreachable(r, s, rt.clock.now())]) notifier.notify(e);
  };
  rt.hooks.onBackupJobFailed = (job, error) => {
    previous.onBackupJobFailed?.(job, error);
    notifier.notify(eventFromBackupJob(job, error, scope()));
  };
  rt.hooks.onDrill = (d) => {
    previous.onDrill?.(d);
    notifier.notify(eventFromDrill(d, scope()));
  };
  rt.hooks.onCertificates = (job, outcome) => {
    previous.onCertificates?.(job, outcome);
    const e = eventFromCertificates(job, outcome, scope());
    if (e) notifier.notify(e);
  };
  rt.hooks.flush = async () => {
    await previous.flush?.();
    await notifier.flush();
  };
}
