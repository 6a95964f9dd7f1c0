import type { GateFailure, GateVerdict } from '../model/health.js';
import type { Clock } from '../core/clock.js';
import type { ContainerId } from '../core/ids.js';
import type { HealthOptions, Probe } from '../model/desired.js';
import type { DockerPort } from '../ports/docker.js';
import type { ContainerInfo } from '../model/actual.js';
import { describeProbe, excerpt, runProbe, tailExcerpt, type ProbeOutcome } from './probes.js';

export interface GateDeps {
  docker: DockerPort;
  clock: Clock;
  /** How often the container's state is read; the probes keep their own intervals. */
  pollMs?: number;
  runProbe?: typeof runProbe;
}

interface ProbeState {
  probe: Probe;
  passed: boolean;
  nextAt: number;
  consecutiveFailures: number;
  last?: ProbeOutcome;
}

/**
 * The verdict on a freshly started container. It passes when the Docker HEALTHCHECK (from the
 * image or the spec) says healthy and every x-agent probe has passed, before the deadline, and
 * then the container neither exits nor restarts, nor turns unhealthy, nor fails a probe
 * `retries` times in a row, during the stabilisation window. Anything else fails, with a
 * reason that says which check and what it saw.
 *
 * Docker runs a HEALTHCHECK for the first time one interval after start (often 30 s; Engine 20
 * has no start interval), so while Docker still says `starting` the gate runs the same command
 * itself (docker exec, at once and then with a growing delay up to one second). One success
 * counts as healthy, as it does for Docker (a check is healthy after one success). Docker's own
 * verdict still rules: `unhealthy` fails the gate, in either phase.
 */
export async function runHealthGate(deps: GateDeps, containerId: ContainerId, options: HealthOptions, signal?: AbortSignal): Promise<GateVerdict> {
  const { docker, clock } = deps;
  const pollMs = deps.pollMs ?? 100;
  const probe = deps.runProbe ?? runProbe;
  const start = clock.now();
  const deadline = start + options.timeoutMs;
  let stabilizing = false;
  const fail = async (failure: GateFailure): Promise<GateVerdict> => {
    // A container stopped by an engine that is shutting down (or probes failing because of it)
    // says nothing about the version: when the engine is going away, throw its transient error.
    if (!signal?.aborted) await docker.ping(signal);
    return { ok: false, failure, stabilizing, reason: describeGateFailure(failure, stabilizing), durationMs: clock.now() - start };
  };

  const first = await docker.inspectContainer(containerId);
  if (!first) return fail({ kind: 'disappeared' });
  const baseline = { restartCount: first.restartCount, startedAt: first.startedAt, sinceMs: sinceOf(first.startedAt, start) };
  const probes: ProbeState[] = options.probes.map((p) => ({ probe: p, passed: false, nextAt: start, consecutiveFailures: 0 }));
  const early = { passed: false, nextAt: start, delayMs: 100 };
  const runEarlyHealthcheck = async (info: ContainerInfo): Promise<void> => {
    const cmd = info.healthcheckCommand;
    if (!cmd || early.passed || info.health !== 'starting' || clock.now() < early.nextAt) return;
    const r = await probe({ kind: 'exec', argv: cmd.argv, timeoutMs: cmd.timeoutMs, intervalMs: 0, retries: 1 }, { docker, containerId, signal });
    early.passed = r.ok;
    early.nextAt = clock.now() + early.delayMs;
    early.delayMs = Math.min(early.delayMs * 2, 1000);
  };

  const runDueProbes = async (now: number): Promise<GateFailure | undefined> => {
    await Promise.all(
      probes
        .filter((s) => s.nextAt <= now && (stabilizing || !s.passed))
        .map(async (s) => {
          s.last = await probe(s.probe, { docker, containerId, signal });
          s.nextAt = clock.now() + s.probe.intervalMs;
          if (s.last.ok) {
            s.passed = true;
            s.consecutiveFailures = 0;
          } else if (stabilizing || s.passed) {
            s.consecutiveFailures++;
          }
        }),
    );
    const broken = probes.find((s) => s.passed && s.consecutiveFailures >= s.probe.retries);
    return broken ? { kind: 'probe-failed', probe: describeProbe(broken.probe), failures: broken.consecutiveFailures, detail: broken.last?.detail ?? '' } : undefined;
  };

  // Phase 1: become healthy before the deadline.
  for (;;) {
    if (signal?.aborted) return fail({ kind: 'aborted' });
    const c = await docker.inspectContainer(containerId);
    const broken = c ? await brokenState(docker, c, baseline) : { kind: 'disappeared' as const };
    if (broken) return fail(broken);
    const info = c as ContainerInfo;
    const [probeFailure] = await Promise.all([runDueProbes(clock.now()), runEarlyHealthcheck(info)]);
    if (probeFailure) return fail(probeFailure);
    const dockerHealthy = !info.hasHealthcheck || info.health === 'healthy' || early.passed;
    if (dockerHealthy && probes.every((s) => s.passed)) break;
    if (clock.now() >= deadline) return fail({ kind: 'timed-out', afterMs: options.timeoutMs, pending: pendingChecks(info, probes) });
    await clock.sleep(pollMs, signal).catch(() => undefined);
  }

  // Phase 2: stay up, healthy and unchanged through the stabilisation window.
  stabilizing = true;
  const stableUntil = clock.now() + options.stabilizationMs;
  for (const s of probes) s.nextAt = Math.max(s.nextAt, clock.now() + s.probe.intervalMs);
  for (;;) {
    if (signal?.aborted) return fail({ kind: 'aborted' });
    const c = await docker.inspectContainer(containerId);
    const broken = c ? await brokenState(docker, c, baseline) : { kind: 'disappeared' as const };
    if (broken) return fail(broken);
    const probeFailure = await runDueProbes(clock.now());
    if (probeFailure) return fail(probeFailure);
    if (clock.now() >= stableUntil) return { ok: true, durationMs: clock.now() - start };
    await clock.sleep(Math.min(pollMs, Math.max(1, stableUntil - clock.now())), signal).catch(() => undefined);
  }
}

/** The failure in words, for status, the revert commit, the quarantine rule and notifications. */
export function describeGateFailure(f: GateFailure, stabilizing = false): string {
  const output = (o?: string) => (o ? `; output: ${o}` : '');
  const during = stabilizing ? ' during the stabilisation window' : '';
  switch (f.kind) {
    case 'exited':
      return `container exited with code ${f.exitCode}${f.oomKilled ? ' (out of memory)' : ''}${f.error ? `: ${f.error}` : ''}${output(f.output)}${during}`;
    case 'restarted':
      return `container ${f.exitCode === undefined ? 'exited' : `exited with code ${f.exitCode}`} and was restarted by its restart policy${f.restarts > 1 ? ` (${f.restarts} times)` : ''}${output(f.output)}${during}`;
    case 'unhealthy':
      return `Docker health check reports unhealthy${f.output ? `: ${f.output}` : ''}${during}`;
    case 'probe-failed':
      return `probe ${f.probe} failed ${f.failures} times in a row: ${f.detail}${during}`;
    case 'timed-out':
      return `not healthy after ${Math.round(f.afterMs / 1000)}s: ${f.pending}`;
    case 'disappeared':
      return `container disappeared${during}`;
    case 'not-running':
      return `container is ${f.status}${during}`;
    case 'aborted':
      return 'aborted';
  }
}

/** Where to look for the container's exits: from its start (the engine's clock), else from the gate's. */
function sinceOf(startedAt: string, fallback: number): number {
  const t = Date.parse(startedAt);
  return Number.isFinite(t) && t > 0 ? t : fallback;
}

async function brokenState(docker: DockerPort, c: ContainerInfo, baseline: { restartCount: number; startedAt: string; sinceMs: number }): Promise<GateFailure | undefined> {
  const output = async () => tailExcerpt(await docker.logs(c.id, 20).catch(() => '')) || undefined;
  if (c.status === 'exited' || c.status === 'dead') {
    const f: GateFailure = { kind: 'exited', exitCode: c.exitCode, oomKilled: c.oomKilled };
    if (c.error) f.error = c.error;
    const out = await output();
    return out ? { ...f, output: out } : f;
  }
  if (c.status === 'restarting' || c.restartCount > baseline.restartCount || (c.startedAt !== baseline.startedAt && baseline.startedAt !== '0001-01-01T00:00:00Z')) {
    // Once restarted, inspect says exit code 0: the engine's events know the code it exited with.
    const exits = await docker.exits(c.id, baseline.sinceMs).catch(() => []);
    const last = exits[exits.length - 1];
    const f: GateFailure = { kind: 'restarted', restarts: Math.max(1, c.restartCount - baseline.restartCount) };
    if (last) f.exitCode = last.exitCode;
    else if (c.status === 'restarting') f.exitCode = c.exitCode;
    const out = await output();
    return out ? { ...f, output: out } : f;
  }
  if (c.status !== 'running') return { kind: 'not-running', status: c.status };
  if (c.hasHealthcheck && c.health === 'unhealthy') return c.healthOutput ? { kind: 'unhealthy', output: excerpt(c.healthOutput) } : { kind: 'unhealthy' };
  return undefined;
}

function pendingChecks(c: ContainerInfo, probes: ProbeState[]): string {
  const parts: string[] = [];
  if (c.hasHealthcheck && c.health !== 'healthy') parts.push(`Docker health is ${c.health}${c.healthOutput ? ` (${excerpt(c.healthOutput, 120)})` : ''}`);
  for (const s of probes.filter((p) => !p.passed)) parts.push(`probe ${describeProbe(s.probe)}: ${s.last?.detail ?? 'not run'}`);
  return parts.join('; ') || 'unknown';
}
