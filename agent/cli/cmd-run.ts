import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { reply, startHttpServer, type Route } from '../http/server.js';
import { pushedBranch, verifyWebhookSignature } from '../http/webhook.js';
import { createLoop } from '../reconcile/loop.js';
import { backupService } from '../backup/operations.js';
import type { DesiredState, JobSpec } from '../desired/types.js';
import { createScheduler } from '../schedule/scheduler.js';
import { reconcileOnce } from '../reconcile/reconcile.js';
import { acquireStateLock } from '../state/lock.js';
import type { Runtime } from './runtime.js';

export const WEBHOOK_PATH = '/hooks/git';

/**
 * `agent run`: reconcile at start, on every change of the source (directory watch, or webhook
 * for Git) and at each interval, until SIGTERM/SIGINT. The first signal lets the transaction
 * in flight finish; a second one cuts it short (its journal resumes it at the next start).
 */
export async function runCommand(rt: Runtime, signals: { signal: AbortSignal; txSignal: AbortSignal }): Promise<void> {
  await rt.store.init();
  const lock = await acquireStateLock(rt.config.stateDir);
  const log = rt.log;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const ctx = await rt.reconcileContext();
    let desired: DesiredState | undefined;
    const scheduler = createScheduler({ stateDir: rt.config.stateDir, clock: rt.clock, log, run: (job, signal) => runJob(rt, () => desired, job, signal) });
    const loop = createLoop({
      intervalMs: rt.config.reconcile.intervalMs,
      jitter: rt.config.reconcile.jitter,
      minBackoffMs: 2000,
      log,
      reconcile: async (signal) => {
        // Re-read the env file each pass: a rotated secret applies without a restart.
        const fresh = await rt.reconcileContext();
        return reconcileOnce({ ...ctx, env: fresh.env, secrets: fresh.secrets }, { signal, txSignal: signals.txSignal });
      },
      onReport: (r) => {
        log.info({ result: r.result, revision: r.revision, transactions: r.transactions.length }, 'Reconcile finished');
        if (r.desired) {
          desired = r.desired;
          void scheduler.update(r.desired.jobs);
        }
      },
    });
    if (rt.source.watch) {
      const stop = await rt.source.watch(() => loop.trigger('source changed')).catch((err: unknown) => {
        log.warn({ err: errorMessage(err) }, 'Cannot watch the source; relying on the resync interval');
        return undefined;
      });
      if (stop) cleanups.push(stop);
    }
    if (rt.config.http.listen) {
      const server = await startHttpServer(rt.config.http.listen, [webhookRoute(rt, await rt.webhookSecret(), () => loop.trigger('webhook'), log)], log);
      cleanups.push(server.close);
    }
    log.info({ source: rt.source.location, branch: rt.source.branch, stateDir: rt.config.stateDir, intervalMs: rt.config.reconcile.intervalMs }, 'Agent started');
    await Promise.all([loop.run(signals.signal), scheduler.run(signals.signal)]);
    log.info('Agent stopped');
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await lock.release();
  }
}

/** POST /hooks/git: a push event signed with the shared secret triggers an immediate sync. */
export function webhookRoute(rt: Runtime, secret: string | undefined, trigger: () => void, log: Logger): Route {
  if (!secret) log.warn('No webhook secret configured: webhook calls are refused (set webhook.secretFile)');
  return {
    method: 'POST',
    path: WEBHOOK_PATH,
    handle(req, body, res) {
      if (!secret) return reply(res, 401, { error: 'webhook secret not configured on the agent' });
      const verdict = verifyWebhookSignature(req.headers, body, secret);
      if (!verdict.ok) {
        log.warn({ reason: verdict.reason, remote: req.socket.remoteAddress }, 'Webhook refused');
        return reply(res, 401, { error: verdict.reason });
      }
      const branch = pushedBranch(body);
      if (branch && rt.source.branch && branch !== rt.source.branch) return reply(res, 202, { accepted: false, reason: `push to ${branch}, tracking ${rt.source.branch}` });
      log.info({ header: verdict.header, branch }, 'Webhook accepted: syncing now');
      trigger();
      return reply(res, 202, { accepted: true });
    },
  };
}

/** What a scheduled job does; its message is recorded with the job's result. */
async function runJob(rt: Runtime, desired: () => DesiredState | undefined, job: JobSpec, signal: AbortSignal): Promise<string> {
  const state = desired();
  if (!state) throw new Error('no valid desired state has been read yet');
  if (!job.backup) return 'nothing to do';
  const services = job.backup.services.length > 0 ? job.backup.services : Object.values(state.services).filter((s) => s.agent.backup).map((s) => s.name);
  const ops = await rt.operations();
  const done: string[] = [];
  const failed: string[] = [];
  for (const service of services) {
    try {
      const m = await backupService({ ...ops, backup: { ...ops.backup, onProgress: undefined } }, state, service, 'scheduled', signal);
      done.push(`${service}: ${m.id}`);
    } catch (err) {
      failed.push(`${service}: ${errorMessage(err)}`);
    }
  }
  if (failed.length > 0) throw new Error(`backup failed for ${failed.join('; ')}${done.length ? `; done: ${done.join(', ')}` : ''}`);
  return `backed up ${done.join(', ')}`;
}
