/**
 * What the soak run watches: the agent process (/proc: RSS, open file descriptors, threads,
 * CPU time), the engine's containers, temporary files, and the agent's JSON log (each
 * "Reconcile finished" line, and every warning or error).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type Docker from 'dockerode';
import { LABELS } from '../agent/core/labels.js';

export interface ProcSample {
  rssKiB: number;
  fds: number;
  threads: number;
  cpuSeconds: number;
}

export function sampleProcess(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  // utime and stime are fields 14 and 15 of stat, counted after the ") " that ends the command name
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssKiB: field('VmRSS'), fds: readdirSync(`/proc/${pid}/fd`).length, threads: field('Threads'), cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100 };
}

export interface HeapSample {
  heapUsedKiB: number;
  heapTotalKiB: number;
  externalKiB: number;
  handles: number;
}

/** The agent's own view of its heap, from its /metrics (prom-client's default process metrics). */
export async function sampleMetrics(port: number): Promise<HeapSample> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^gitops_agent_${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  const kib = (name: string) => Math.round(value(name) / 1024);
  return { heapUsedKiB: kib('nodejs_heap_size_used_bytes'), heapTotalKiB: kib('nodejs_heap_size_total_bytes'), externalKiB: kib('nodejs_external_memory_bytes'), handles: value('nodejs_active_handles_total') };
}

export interface ContainerCount {
  all: number;
  managed: number;
  running: number;
  /** Names of containers other than the live `<stack>-<service>` ones (e.g. a kept `.prev-` container). */
  extra: string[];
}

export async function countContainers(docker: Docker, liveNames: Set<string>): Promise<ContainerCount> {
  const all = await docker.listContainers({ all: true });
  const managed = all.filter((c) => c.Labels?.[LABELS.managed] === 'true');
  const names = all.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
  return { all: all.length, managed: managed.length, running: all.filter((c) => c.State === 'running').length, extra: names.filter((n) => !liveNames.has(n)) };
}

/**
 * Temporary files the agent may leave: its atomic writes' `.<name>.<random>.tmp` anywhere in
 * the state directory, and anything in the agent's own TMPDIR (the soak gives it an empty one).
 */
export function tempFiles(stateDir: string, agentTmp: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.tmp') || e.name.startsWith('tmp-')) found.push(p);
    }
  };
  walk(stateDir);
  return [...found, ...readdirSync(agentTmp).map((n) => join(agentTmp, n))];
}

export interface Finished {
  revision: string;
  result: string;
  transactions: number;
  durationMs: number;
}

/** Follows the agent's JSON log on stderr: passes as they finish, and the warnings and errors. */
export class AgentLog {
  readonly finished: Finished[] = [];
  readonly problems: string[] = [];
  private waiters: (() => void)[] = [];

  constructor(child: ChildProcess, copy: WriteStream) {
    const rl = createInterface({ input: child.stderr! });
    rl.on('line', (line) => {
      copy.write(`${line}\n`);
      let entry: { msg?: string; level?: number; revision?: string; result?: string; transactions?: number; durationMs?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        this.problems.push(`(not JSON) ${line}`);
        return;
      }
      if ((entry.level ?? 0) >= 40) this.problems.push(line);
      if (entry.msg === 'Reconcile finished') {
        this.finished.push({ revision: entry.revision ?? '', result: entry.result ?? '', transactions: entry.transactions ?? 0, durationMs: entry.durationMs ?? 0 });
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  /** The first pass, from index `from` of `finished` on, that finished `revision`. */
  async waitFor(revision: string, from: number, timeoutMs: number): Promise<Finished> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.finished.slice(from).find((f) => f.revision === revision);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no pass finished revision ${revision.slice(0, 12)} within ${timeoutMs} ms; last passes: ${JSON.stringify(this.finished.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Least-squares slope of `ys` over their index. */
export function slope(ys: number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}
