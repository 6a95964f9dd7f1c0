import { connect } from 'node:net';
import type { ContainerId } from '../core/ids.js';
import type { Probe } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';

export interface ProbeOutcome {
  ok: boolean;
  /** What was observed, for the failure report: "got 500 (expected 200)", "connection refused". */
  detail: string;
}

export function describeProbe(p: Probe): string {
  switch (p.kind) {
    case 'http':
      return `http ${p.url}`;
    case 'tcp':
      return `tcp ${p.host}:${p.port}`;
    case 'exec':
      return `exec ${p.argv.join(' ')}`;
  }
}

/** Runs one attempt of a probe, bounded by its timeout. Never throws. */
export async function runProbe(probe: Probe, ctx: { docker: DockerPort; containerId: ContainerId; signal?: AbortSignal }): Promise<ProbeOutcome> {
  try {
    switch (probe.kind) {
      case 'http':
        return await httpProbe(probe.url, probe.expectStatus, probe.timeoutMs);
      case 'tcp':
        return await tcpProbe(probe.host, probe.port, probe.timeoutMs);
      case 'exec': {
        const r = await ctx.docker.exec(ctx.containerId, probe.argv, { timeoutMs: probe.timeoutMs, signal: ctx.signal });
        return { ok: r.exitCode === 0, detail: `exit code ${r.exitCode}${r.output ? `: ${excerpt(r.output)}` : ''}` };
      }
    }
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

async function httpProbe(url: string, expect: number[], timeoutMs: number): Promise<ProbeOutcome> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError') return { ok: false, detail: `no answer within ${timeoutMs} ms` };
    return { ok: false, detail: e.cause?.code ? `connection failed (${e.cause.code})` : e.message };
  }
  const body = await res.text().catch(() => '');
  const ok = expect.length > 0 ? expect.includes(res.status) : res.status >= 200 && res.status < 400;
  const wanted = expect.length > 0 ? expect.join(' or ') : '2xx or 3xx';
  return { ok, detail: `got ${res.status} (expected ${wanted})${ok || !body ? '' : `: ${excerpt(body)}`}` };
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (outcome: ProbeOutcome) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, detail: `no connection within ${timeoutMs} ms` }));
    socket.once('connect', () => done({ ok: true, detail: 'connected' }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: `connection failed (${err.code ?? err.message})` }));
  });
}

export function excerpt(text: string, max = 300): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}...` : t;
}

/** The end of a text, on one line: for container output, where the last lines say why it stopped. */
export function tailExcerpt(text: string, max = 400): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `...${t.slice(-max)}` : t;
}
