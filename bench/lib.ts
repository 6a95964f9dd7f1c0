/**
 * Shared pieces of the benchmarks: a private engine and registry (the test harness), timing of
 * child processes with their peak memory (GNU time), and medians.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve(import.meta.dirname, '../dist/agent/cli/main.js');

export interface Measured {
  ms: number;
  /** Peak resident set size, KiB (GNU time's %M). */
  maxRssKiB: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command under /usr/bin/time -f '%e %M' and returns wall time and peak RSS. */
export function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %M', cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const m = /TIME [\d.]+ (\d+)\s*$/.exec(stderr);
      resolvePromise({ ms, maxRssKiB: m ? Number(m[1]) : NaN, code, stdout, stderr: stderr.replace(/TIME [\d.]+ \d+\s*$/, '') });
    });
  });
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/** Runs a command to its end: its exit code and its output (stdout and stderr interleaved). */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, out }));
  });
}

/** Until `url` answers as `check` wants (`what` names it for the error), polling every 20 ms. */
export async function waitAnswer(url: string, what: string, check: (res: Response, body: string) => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (check(res, (await res.text()).trim())) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer with ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Until `url` serves `body` with a 2xx status. */
export function waitServing(url: string, body: string, timeoutMs = 60_000): Promise<void> {
  return waitAnswer(url, body, (res, got) => res.ok && got === body, timeoutMs);
}

