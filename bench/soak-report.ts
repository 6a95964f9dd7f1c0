/**
 * The soak run's verdict and its section of docs/soak.md: memory growth after the warm-up
 * (medians of windows, see docs/soak.md for why), file descriptors, containers, temporary
 * files, and whether every cycle came to what it should.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { median } from './lib.js';
import type { ContainerCount } from './soak-sample.js';
import { slope } from './soak-sample.js';
import type { CycleKind, CyclePlan } from './soak-stack.js';

export const RSS_GROWTH_LIMIT = 0.1;
/** Share of the cycles that is warm-up: docs/soak.md says why 20 %. */
export const WARMUP = 0.2;
export const FD_MARGIN = 5;
const DOC = resolve(import.meta.dirname, '../docs/soak.md');

export interface CycleRecord {
  i: number;
  kind: CycleKind;
  sha: string;
  /** From the push to the pass that applied the commit (and, for a rollback, its revert). */
  ms: number;
  /** The agent's own duration of that pass. */
  passMs: number;
  rssKiB: number;
  /** The agent's V8 heap in use and memory outside it (Buffers), from its /metrics. */
  heapUsedKiB: number;
  heapTotalKiB: number;
  externalKiB: number;
  handles: number;
  fds: number;
  threads: number;
  cpuSeconds: number;
  containers: number;
  managed: number;
  temps: number;
  anomalies: string[];
}

export interface EndState {
  containers: ContainerCount;
  expectedContainers: number;
  tempFilesRunning: string[];
  tempFilesAfterExit: string[];
  outOfSync: string[];
  ready: boolean;
  exitCode: number | null;
  gitObjects: { packs: number; loose: number };
  problems: string[];
}

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

export interface SoakResult {
  ok: boolean;
  checks: Check[];
  summary: string;
  markdown: string;
}

const mibOf = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const pick = (cs: CycleRecord[], f: (c: CycleRecord) => number) => cs.map(f);

/** Distinct warning and error messages of the agent's log, with how often each came. */
function problemCounts(lines: string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    let key = line.slice(0, 120);
    try {
      key = (JSON.parse(line) as { msg?: string }).msg ?? key;
    } catch {
      // not JSON: the line itself
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([m, n]) => `${n} x "${m}"`);
}

export function analyse(cycles: CycleRecord[], end: EndState): SoakResult {
  const n = cycles.length;
  const tenth = Math.max(1, Math.round(n / 10));
  const warm = Math.min(n - tenth, Math.round(n * WARMUP));
  const after = cycles.slice(warm);
  const base = cycles.slice(warm, warm + tenth);
  const last = cycles.slice(-tenth);
  const rssBase = median(pick(base, (c) => c.rssKiB));
  const rssEnd = median(pick(last, (c) => c.rssKiB));
  const growth = (rssEnd - rssBase) / rssBase;
  const early = median(pick(cycles.slice(tenth, 2 * tenth), (c) => c.rssKiB));
  const fdsBase = median(pick(base, (c) => c.fds));
  const fdsEnd = median(pick(last, (c) => c.fds));
  const fdsMax = Math.max(...pick(after, (c) => c.fds));
  const perHundred = slope(pick(after, (c) => c.rssKiB)) * 100;
  const anomalies = cycles.flatMap((c) => c.anomalies.map((a) => `cycle ${c.i} (${c.kind}): ${a}`));
  const kinds = new Map<string, number>();
  for (const c of cycles) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
  const c = end.containers;
  const checks: Check[] = [
    { what: 'RSS growth after the warm-up', ok: growth < RSS_GROWTH_LIMIT, detail: `${mibOf(rssBase)} -> ${mibOf(rssEnd)} (${(growth * 100).toFixed(1)} %, limit < ${RSS_GROWTH_LIMIT * 100} %)` },
    { what: 'open file descriptors', ok: fdsEnd <= fdsBase + FD_MARGIN, detail: `${fdsBase} -> ${fdsEnd} (median), max ${fdsMax} after the warm-up (limit: +${FD_MARGIN})` },
    {
      what: 'containers at the end',
      ok: c.all === end.expectedContainers && c.managed === end.expectedContainers && c.running === end.expectedContainers && c.extra.length === 0,
      detail: `${c.all} on the engine, ${c.managed} with the agent's labels, ${c.running} running, expected ${end.expectedContainers}${c.extra.length ? `; extra: ${c.extra.join(', ')}` : ''}`,
    },
    { what: 'containers after every cycle', ok: cycles.every((x) => x.containers === end.expectedContainers), detail: `max ${Math.max(...pick(cycles, (x) => x.containers))}, min ${Math.min(...pick(cycles, (x) => x.containers))}` },
    { what: 'temporary files', ok: end.tempFilesRunning.length === 0 && end.tempFilesAfterExit.length === 0, detail: `${end.tempFilesRunning.length} left while running, ${end.tempFilesAfterExit.length} after exit; max seen after a cycle ${Math.max(...pick(cycles, (x) => x.temps))}${end.tempFilesRunning.length ? `: ${end.tempFilesRunning.slice(0, 5).join(', ')}` : ''}` },
    { what: 'every cycle applied as expected', ok: anomalies.length === 0, detail: anomalies.length ? anomalies.slice(0, 5).join('; ') : `${n} of ${n}` },
    { what: 'end state', ok: end.outOfSync.length === 0 && end.ready, detail: end.outOfSync.length ? `out of sync: ${end.outOfSync.join(', ')}` : `every service runs its desired version, Ready=${end.ready ? 'True' : 'False'}` },
    { what: 'agent exit on SIGTERM', ok: end.exitCode === 0, detail: `exit code ${end.exitCode}` },
  ];
  const ok = checks.every((x) => x.ok);

  const deciles: string[] = [];
  for (let s = 0; s < n; s += tenth) {
    const part = cycles.slice(s, s + tenth);
    deciles.push(
      `| ${s + 1}-${s + part.length}${s < warm ? ' (warm-up)' : ''} | ${mibOf(median(pick(part, (x) => x.rssKiB)))} | ${mibOf(Math.max(...pick(part, (x) => x.rssKiB)))} | ${mibOf(Math.min(...pick(part, (x) => x.heapUsedKiB)))} / ${mibOf(median(pick(part, (x) => x.heapUsedKiB)))} | ${mibOf(median(pick(part, (x) => x.externalKiB)))} | ${median(pick(part, (x) => x.fds))} / ${Math.max(...pick(part, (x) => x.fds))} | ${median(pick(part, (x) => x.handles))} | ${median(pick(part, (x) => x.passMs))} ms | ${median(pick(part, (x) => x.ms))} ms |`,
    );
  }
  const cpu = (cycles.at(-1)?.cpuSeconds ?? 0) - (cycles[0]?.cpuSeconds ?? 0);
  const markdown = [
    `Cycles: ${[...kinds].map(([k, v]) => `${v} ${k}`).join(', ')}.`,
    '',
    '| check | result | figures |',
    '| --- | --- | --- |',
    ...checks.map((x) => `| ${x.what} | ${x.ok ? 'pass' : '**FAIL**'} | ${x.detail} |`),
    '',
    `RSS: median of cycles ${warm + 1}-${warm + tenth} (right after the warm-up of ${warm} cycles) ${mibOf(rssBase)}, median of the last ${tenth} cycles ${mibOf(rssEnd)}; measured from cycles ${tenth + 1}-${2 * tenth} instead (a warm-up of 10 %, while RSS is still settling), the growth would be ${(((rssEnd - early) / early) * 100).toFixed(1)} %; least-squares trend after the warm-up ${perHundred >= 0 ? '+' : ''}${(perHundred / 1024).toFixed(2)} MiB per 100 cycles; lowest ${mibOf(Math.min(...pick(after, (x) => x.rssKiB)))}, highest ${mibOf(Math.max(...pick(after, (x) => x.rssKiB)))} after the warm-up. V8 heap in use, lowest sample of the same two windows (what survives collections): ${mibOf(Math.min(...pick(base, (x) => x.heapUsedKiB)))} -> ${mibOf(Math.min(...pick(last, (x) => x.heapUsedKiB)))}. Agent CPU time over the cycles: ${cpu.toFixed(1)} s.`,
    '',
    '| cycles | RSS median | RSS max | V8 heap used min / median | external (Buffers) | fds median / max | active handles | pass (median) | push to applied (median) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...deciles,
    '',
    `The agent's copy of the repository holds ${end.gitObjects.loose} loose objects and ${end.gitObjects.packs} packs at the end (each fetched pack is unpacked). Warnings, errors and lines other than JSON on the agent's standard error: ${end.problems.length ? problemCounts(end.problems).join(', ') : 'none'}.`,
  ].join('\n');
  const summary = [`soak ${ok ? 'passed' : 'FAILED'}: ${n} cycles`, ...checks.map((x) => `  ${x.ok ? 'ok  ' : 'FAIL'} ${x.what}: ${x.detail}`)].join('\n');
  return { ok, checks, summary, markdown };
}

export interface RunInfo {
  cycles: number;
  services: number;
  plan: CyclePlan;
  interval: string;
  loopMs: number;
  totalMs: number;
}

/** Rewrites the results section of docs/soak.md (between its markers); the prose around stays. */
export function writeSoakDoc(r: SoakResult, run: RunInfo): void {
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const cmd = run.cycles === 500 ? 'npm run soak' : `SOAK_CYCLES=${run.cycles} npm run soak`;
  const body = [
    `Measured ${when}Z on ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, with \`${cmd}\`: ${run.cycles} cycles over ${run.services} services (a change every ${run.plan.changeEvery}th cycle, a crashing version every ${run.plan.rollbackEvery}th), \`agent run --interval ${run.interval}\` plus a webhook call per commit. Cycles took ${(run.loopMs / 60000).toFixed(1)} min (${(run.loopMs / run.cycles / 1000).toFixed(2)} s each on average), the whole run ${(run.totalMs / 60000).toFixed(1)} min. Verdict: **${r.ok ? 'passed' : 'FAILED'}**.`,
    '',
    r.markdown,
  ].join('\n');
  const doc = readFileSync(DOC, 'utf8');
  const marked = /(<!-- soak:results:start -->\n)[\s\S]*?(\n<!-- soak:results:end -->)/;
  if (!marked.test(doc)) throw new Error(`${DOC} has no soak:results markers`);
  writeFileSync(DOC, doc.replace(marked, (_m, open: string, close: string) => `${open}${body}${close}`));
  process.stderr.write(`written to ${DOC}\n`);
}
