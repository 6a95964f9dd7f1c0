import { Cron } from 'croner';
import type { Logger } from 'pino';
import { isoTime, type Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { JobSpec } from '../model/desired.js';
import type { StateDocument } from '../ports/state.js';

export interface JobRecord {
  lastRunAt?: string;
  lastResult?: 'succeeded' | 'failed';
  lastMessage?: string;
  /** The job's definition when it last ran: a changed schedule starts afresh. */
  schedule?: string;
}

export interface JobStatus extends JobRecord {
  name: string;
  schedule: string;
  timezone: string;
  nextRunAt?: string;
  running: boolean;
}

/** When a job is next due after `after`, in its time zone; undefined for an expression that never fires again. */
export function nextRun(job: Pick<JobSpec, 'schedule' | 'timezone'>, after: Date): Date | undefined {
  return new Cron(job.schedule, { timezone: job.timezone, paused: true }).nextRun(after) ?? undefined;
}

/**
 * Scheduled jobs of the desired state, run by `agent run` one at a time. A run missed while the
 * agent was down is run once at start (`missed: run-once`) or skipped (`missed: skip`, the
 * default): the rule is decided by the last run recorded (`<state>/jobs.json`).
 */
export function createScheduler(deps: { records: StateDocument<Record<string, JobRecord>>; clock: Clock; log: Logger; run: (job: JobSpec, signal: AbortSignal) => Promise<string> }) {
  let jobs: Record<string, JobSpec> = {};
  let records: Record<string, JobRecord> | undefined;
  /** Per job: the instant from which the next occurrence counts. */
  const baseline = new Map<string, number>();
  const startedAt = deps.clock.now();
  let running: string | undefined;
  let wake: (() => void) | undefined;

  const load = async () => (records ??= (await deps.records.load().catch(() => undefined)) ?? {});
  const save = async () => deps.records.save(records ?? {});

  const baselineFor = (job: JobSpec, rec: JobRecord | undefined): number => {
    const last = rec?.lastRunAt && rec.schedule === job.schedule ? Date.parse(rec.lastRunAt) : undefined;
    if (last === undefined) return Math.max(startedAt, deps.clock.now() - 1000);
    return job.missed === 'run-once' ? last : Math.max(last, startedAt);
  };

  return {
    /** The jobs of the newest valid desired state. */
    async update(next: Record<string, JobSpec>) {
      const recs = await load();
      for (const job of Object.values(next)) {
        const prev = jobs[job.name];
        if (!prev || prev.schedule !== job.schedule || prev.timezone !== job.timezone || !baseline.has(job.name)) baseline.set(job.name, baselineFor(job, recs[job.name]));
      }
      for (const name of baseline.keys()) if (!next[name]) baseline.delete(name);
      jobs = next;
      wake?.();
    },

    async run(signal: AbortSignal) {
      signal.addEventListener('abort', () => wake?.(), { once: true });
      while (!signal.aborted) {
        const now = deps.clock.now();
        const due = Object.values(jobs)
          .map((job) => ({ job, at: nextRun(job, new Date(baseline.get(job.name) ?? now))?.getTime() }))
          .filter((x): x is { job: JobSpec; at: number } => x.at !== undefined)
          .sort((a, b) => a.at - b.at || a.job.name.localeCompare(b.job.name));
        const first = due[0];
        if (first && first.at <= now) {
          await this.runJob(first.job, signal);
          continue;
        }
        const delay = Math.min(60_000, first ? first.at - now : 60_000);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          t.unref?.();
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    },

    async runJob(job: JobSpec, signal: AbortSignal) {
      const recs = await load();
      running = job.name;
      const at = isoTime(deps.clock);
      deps.log.info({ job: job.name }, 'Scheduled job started');
      let rec: JobRecord;
      try {
        const message = await deps.run(job, signal);
        rec = { lastRunAt: at, lastResult: 'succeeded', lastMessage: message, schedule: job.schedule };
        deps.log.info({ job: job.name, message }, 'Scheduled job succeeded');
      } catch (err) {
        rec = { lastRunAt: at, lastResult: 'failed', lastMessage: errorMessage(err), schedule: job.schedule };
        deps.log.error({ job: job.name, err: errorMessage(err) }, 'Scheduled job failed');
      }
      running = undefined;
      recs[job.name] = rec;
      baseline.set(job.name, Math.max(Date.parse(at), deps.clock.now()));
      await save();
      return rec;
    },

    async status(): Promise<JobStatus[]> {
      const recs = await load();
      return Object.values(jobs).map((job) => {
        const next = nextRun(job, new Date(baseline.get(job.name) ?? deps.clock.now()));
        return { name: job.name, schedule: job.schedule, timezone: job.timezone, ...recs[job.name], ...(next ? { nextRunAt: next.toISOString() } : {}), running: running === job.name };
      });
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
