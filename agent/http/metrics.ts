import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackupManifest, DrillResult } from '../model/backup.js';
import { totalBytes } from '../backup/manifest.js';
import type { ReconcileReport } from '../model/report.js';
import type { Route } from './server.js';

/**
 * The agent's Prometheus metrics, on a registry of its own (no global state): reconcile
 * duration, last successful sync, transactions by service and result, rollbacks, backup size
 * and duration, quarantined versions, pending updates, and the process's own figures.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gitops_agent_' });
  const reconcileDuration = new Histogram({ name: 'gitops_agent_reconcile_duration_seconds', help: 'Duration of reconcile passes', labelNames: ['result'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [registry] });
  const lastSync = new Gauge({ name: 'gitops_agent_last_successful_sync_timestamp_seconds', help: 'When the desired state was last read successfully (Unix time)', registers: [registry] });
  const transactions = new Counter({ name: 'gitops_agent_transactions_total', help: 'Update transactions by service and result', labelNames: ['service', 'result'], registers: [registry] });
  const rollbacks = new Counter({ name: 'gitops_agent_rollbacks_total', help: 'Updates rolled back, by service', labelNames: ['service'], registers: [registry] });
  const backupSize = new Gauge({ name: 'gitops_agent_backup_size_bytes', help: 'Size of the last backup, by service', labelNames: ['service'], registers: [registry] });
  const backupDuration = new Gauge({ name: 'gitops_agent_backup_duration_seconds', help: 'Duration of the last backup, by service', labelNames: ['service'], registers: [registry] });
  const backupAdded = new Gauge({ name: 'gitops_agent_backup_added_bytes', help: 'What the last backup added to the restic repository after deduplication, by service', labelNames: ['service'], registers: [registry] });
  const backupLast = new Gauge({ name: 'gitops_agent_backup_last_success_timestamp_seconds', help: 'When the last backup completed, by service (Unix time)', labelNames: ['service'], registers: [registry] });
  const drillLast = new Gauge({ name: 'gitops_agent_drill_last_timestamp_seconds', help: 'When the last restore drill ran, by service (Unix time)', labelNames: ['service'], registers: [registry] });
  const drillOk = new Gauge({ name: 'gitops_agent_drill_success', help: '1 when the last restore drill passed, by service', labelNames: ['service'], registers: [registry] });
  const drillDuration = new Gauge({ name: 'gitops_agent_drill_duration_seconds', help: 'Duration of the last restore drill, by service', labelNames: ['service'], registers: [registry] });
  const quarantined = new Gauge({ name: 'gitops_agent_quarantined_versions', help: 'Versions quarantined in renovate.json', registers: [registry] });
  const pending = new Gauge({ name: 'gitops_agent_pending_updates', help: 'Changes not applied after the last pass (held, waiting for a window or a dependency)', registers: [registry] });
  const ready = new Gauge({ name: 'gitops_agent_ready', help: '1 when every service runs its desired spec and nothing is held', registers: [registry] });

  return {
    registry,
    observeReconcile(r: ReconcileReport, seconds: number, at: number, state: { quarantined: number; pending: number; ready: boolean }) {
      reconcileDuration.observe({ result: r.result }, seconds);
      if (r.result !== 'error' && !r.sourceError) lastSync.set(at / 1000);
      for (const t of r.transactions) {
        transactions.inc({ service: t.service, result: t.result });
        if (t.result === 'rolled-back' || t.result === 'rollback-failed') rollbacks.inc({ service: t.service });
      }
      quarantined.set(state.quarantined);
      pending.set(state.pending);
      ready.set(state.ready ? 1 : 0);
    },
    observeBackup(m: BackupManifest) {
      backupSize.set({ service: m.service }, totalBytes(m));
      backupDuration.set({ service: m.service }, Math.max(0, (Date.parse(m.finishedAt) - Date.parse(m.createdAt)) / 1000));
      backupLast.set({ service: m.service }, Date.parse(m.finishedAt) / 1000);
      if (m.artifacts.some((a) => a.added !== undefined)) backupAdded.set({ service: m.service }, m.artifacts.reduce((n, a) => n + (a.added ?? 0), 0));
    },
    observeDrill(d: DrillResult) {
      drillLast.set({ service: d.service }, Date.parse(d.at) / 1000);
      drillOk.set({ service: d.service }, d.ok ? 1 : 0);
      drillDuration.set({ service: d.service }, d.durationMs / 1000);
    },
    route(): Route {
      return {
        method: 'GET',
        path: '/metrics',
        async handle(_req, _body, res) {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(await registry.metrics());
        },
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
