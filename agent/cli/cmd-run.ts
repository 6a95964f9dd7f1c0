import type { Logger } from 'pino';
import { AgentError, errorMessage } from '../core/errors.js';
import type { DesiredState } from '../model/desired.js';
import { healthRoute, type Liveness } from '../http/health.js';
import { readFile } from 'node:fs/promises';
import { reply, startHttpServer, withBearerToken, type Route } from '../http/server.js';
import { createReplayGuard, deliveryId, pushedBranch, verifyWebhookSignature } from '../http/webhook.js';
import { createLoop } from '../reconcile/loop.js';
import { reconcileOnce } from '../reconcile/reconcile.js';
import { runJob } from '../schedule/jobs.js';
import { createScheduler } from '../schedule/scheduler.js';
import type { ReconcileReport } from '../model/report.js';
import type { Runtime } from './runtime.js';
import { wireNotifications } from './notifications.js';

export const WEBHOOK_PATH = '/hooks/git';
/** A push event's payload: Gitea's and GitHub's are a few KiB to a few hundred with many commits. */
export const WEBHOOK_MAX_BODY_BYTES = 512 * 1024;

/**
 * `agent run`: reconcile at start, on every change of the source (directory watch, or webhook
 * for Git) and at each interval, run the scheduled jobs, serve the webhook, /metrics and
 * /healthz, until SIGTERM/SIGINT. The first signal lets the transaction in flight finish; a
 * second one cuts it short (its journal resumes it at the next start).
 */
export async function runCommand(rt: Runtime, signals: { signal: AbortSignal; txSignal: AbortSignal }): Promise<void> {
  await rt.state.init();
  const lock = await rt.state.lockAgent();
  const log = rt.log;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const deps = await rt.reconcileDeps();
    // Loaded only with a listener: prom-client costs 10 MB of memory.
    const metrics = rt.config.http.listen ? (await import('../http/metrics.js')).createMetrics() : undefined;
    if (metrics) {
      rt.hooks.onBackup = (m) => metrics.observeBackup(m);
      rt.hooks.onDrill = (d) => metrics.observeDrill(d);
    }
    await wireNotifications(rt);
    let desired: DesiredState | undefined;
    const liveness: Liveness = { running: false, startedAt: rt.clock.now(), ready: false };
    const scheduler = createScheduler({
      records: rt.state.document('jobs'),
      clock: rt.clock,
      log,
      run: async (job, signal) => {
        try {
          return await runJob({ operations: () => rt.operations(), onDrill: (d) => rt.recordDrill(d), onCertificates: (j, o) => rt.hooks.onCertificates?.(j, o) }, desired, job, signal);
        } catch (err) {
          if (job.backup) rt.hooks.onBackupJobFailed?.(job, errorMessage(err));
          throw err;
        }
      },
    });
    const loop = createLoop({
      intervalMs: rt.config.reconcile.intervalMs,
      jitter: rt.config.reconcile.jitter,
      minBackoffMs: 2000,
      log,
      reconcile: async (signal) => {
        liveness.running = true;
        const started = rt.clock.now();
        try {
          const report = await reconcileOnce(deps, { signal, txSignal: signals.txSignal });
          report.durationMs = rt.clock.now() - started;
          const state = await rt.state.load();
          const ready = state.conditions.find((c) => c.type === 'Ready')?.status === 'True';
          metrics?.observeReconcile(report, (rt.clock.now() - started) / 1000, rt.clock.now(), { quarantined: state.quarantined?.length ?? 0, pending: pendingCount(report), ready });
          liveness.ready = ready;
          return report;
        } finally {
          liveness.running = false;
          liveness.lastPassAt = rt.clock.now();
        }
      },
      onReport: (r) => {
        log.info({ result: r.result, revision: r.revision, transactions: r.transactions.length, durationMs: r.durationMs }, 'Reconcile finished');
        rt.hooks.onReconcile?.(r);
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
      const routes: Route[] = [webhookRoute(rt, await rt.webhookSecret(), () => loop.trigger('webhook'), log), healthRoute(() => liveness, rt.config.reconcile.intervalMs, () => rt.clock.now())];
      if (metrics) {
        const tokenFile = rt.config.http.metricsTokenFile;
        routes.push(tokenFile ? withBearerToken(metrics.route(), await readSecretFile(tokenFile, 'metrics token')) : metrics.route());
      }
      const server = await startHttpServer(rt.config.http.listen, routes, log);
      cleanups.push(server.close);
    }
    log.info({ source: rt.source.location, branch: rt.source.branch, stateDir: rt.config.stateDir, intervalMs: rt.config.reconcile.intervalMs }, 'Agent started');
    await Promise.all([loop.run(signals.signal), scheduler.run(signals.signal)]);
    await rt.hooks.flush?.();
    log.info('Agent stopped');
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await lock.release();
  }
}

/** Services not as desired after the pass: changes still to make, held versions, updates waiting for a window. */
function pendingCount(r: ReconcileReport): number {
  return r.pending?.steps.filter((s) => s.action !== 'none' || s.held || s.deferred).length ?? 0;
}

/** POST /hooks/git: a push event signed with the shared secret triggers an immediate sync. */
export function webhookRoute(rt: Runtime, secret: string | undefined, trigger: () => void, log: Logger): Route {
  if (!secret) log.warn('No webhook secret configured: webhook calls are refused (set webhook.secretFile)');
  const replays = rt.config.webhook.rejectReplays ? createReplayGuard(() => rt.clock.now()) : undefined;
  return {
    method: 'POST',
    path: WEBHOOK_PATH,
    maxBodyBytes: WEBHOOK_MAX_BODY_BYTES,
    handle(req, body, res) {
      if (!secret) return reply(res, 401, { error: 'webhook secret not configured on the agent' });
      const verdict = verifyWebhookSignature(req.headers, body, secret);
      if (!verdict.ok) {
        log.warn({ reason: verdict.reason, remote: req.socket.remoteAddress }, 'Webhook refused');
        return reply(res, 401, { error: verdict.reason });
      }
      if (replays) {
        const id = deliveryId(req.headers);
        if (!id || !replays.accept(id)) {
          log.warn({ delivery: id ?? null, remote: req.socket.remoteAddress }, id ? 'Webhook refused: a replayed delivery' : 'Webhook refused: no delivery id');
          return reply(res, 409, { error: id ? 'delivery already seen' : 'a delivery id header is required' });
        }
      }
      const branch = pushedBranch(body);
      if (branch && rt.source.branch && branch !== rt.source.branch) return reply(res, 202, { accepted: false, reason: `push to ${branch}, tracking ${rt.source.branch}` });
      log.info({ header: verdict.header, branch }, 'Webhook accepted: syncing now');
      trigger();
      return reply(res, 202, { accepted: true });
    },
  };
}

/** A secret kept in a file (one line; the trailing newline is not part of it). */
async function readSecretFile(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot read the ${what} file ${file}: ${errorMessage(err)}`, { cause: err, data: { file } });
  }
  const value = text.replace(/\r?\n$/, '');
  if (!value) throw new AgentError('CONFIG_INVALID', `the ${what} file ${file} is empty`, { data: { file } });
  return value;
}
