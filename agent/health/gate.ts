import type { GateVerdict } from '../model/health.js';
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
  const fail = async (reason: string): Promise<GateVerdict> => {
    // A container stopped by an engine that is shutting down (or probes failing because of it)
    // says nothing about the version: when the engine is going away, throw its transient error.
    if (!signal?.aborted) await docker.ping(signal);
    return { ok: false, reason, durationMs: clock.now() - start };
  };

  const first = await docker.inspectContainer(containerId);
  if (!first) return fail('container disappeared');
  const baseline = { restartCount: first.restartCount, startedAt: first.startedAt };
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

  const runDueProbes = async (now: number, stabilising: boolean): Promise<string | undefined> => {
    await Promise.all(
      probes
        .filter((s) => s.nextAt <= now && (stabilising || !s.passed))
        .map(async (s) => {
          s.last = await probe(s.probe, { docker, containerId, signal });
          s.nextAt = clock.now() + s.probe.intervalMs;
          if (s.last.ok) {
            s.passed = true;
            s.consecutiveFailures = 0;
          } else if (stabilising || s.passed) {
            s.consecutiveFailures++;
          }
        }),
    );
    const broken = probes.find((s) => s.passed && s.consecutiveFailures >= s.probe.retries);
    return broken ? `probe ${describeProbe(broken.probe)} failed ${broken.consecutiveFailures} times in a row: ${broken.last?.detail ?? ''}` : undefined;
  };

  // Phase 1: become healthy before the deadline.
  for (;;) {
    if (signal?.aborted) return fail('aborted');
    const c = await docker.inspectContainer(containerId);
    const broken = c ? await describeBroken(docker, c, baseline) : 'container disappeared';
    if (broken) return fail(broken);
    const info = c as ContainerInfo;
    const [probeFailure] = await Promise.all([runDueProbes(clock.now(), false), runEarlyHealthcheck(info)]);
    if (probeFailure) return fail(probeFailure);
    const dockerHealthy = !info.hasHealthcheck || info.health === 'healthy' || early.passed;
    if (dockerHealthy && probes.every((s) => s.passed)) break;
    if (clock.now() >= deadline) return fail(`not healthy after ${Math.round(options.timeoutMs / 1000)}s: ${pendingChecks(info, probes)}`);
    await clock.sleep(pollMs, signal).catch(() => undefined);
  }

  // Phase 2: stay up, healthy and unchanged through the stabilisation window.
  const stableUntil = clock.now() + options.stabilizationMs;
  for (const s of probes) s.nextAt = Math.max(s.nextAt, clock.now() + s.probe.intervalMs);
  for (;;) {
    if (signal?.aborted) return fail('aborted');
    const c = await docker.inspectContainer(containerId);
    const broken = c ? await describeBroken(docker, c, baseline) : 'container disappeared';
    if (broken) return fail(`${broken} during the stabilisation window`);
    const probeFailure = await runDueProbes(clock.now(), true);
    if (probeFailure) return fail(`${probeFailure} during the stabilisation window`);
    if (clock.now() >= stableUntil) return { ok: true, durationMs: clock.now() - start };
    await clock.sleep(Math.min(pollMs, Math.max(1, stableUntil - clock.now())), signal).catch(() => undefined);
  }
}

async function describeBroken(docker: DockerPort, c: ContainerInfo, baseline: { restartCount: number; startedAt: string }): Promise<string | undefined> {
  if (c.status === 'exited' || c.status === 'dead') {
    const logs = await docker.logs(c.id, 20).catch(() => '');
    return `container exited with code ${c.exitCode}${c.oomKilled ? ' (out of memory)' : ''}${c.error ? `: ${c.error}` : ''}${logs ? `; output: ${tailExcerpt(logs)}` : ''}`;
  }
  if (c.status === 'restarting' || c.restartCount > baseline.restartCount || (c.startedAt !== baseline.startedAt && baseline.startedAt !== '0001-01-01T00:00:00Z')) {
    const logs = await docker.logs(c.id, 20).catch(() => '');
    return `container exited with code ${c.exitCode} and was restarted by its restart policy${logs ? `; output: ${tailExcerpt(logs)}` : ''}`;
  }
  if (c.status !== 'running') return `container is ${c.status}`;
  if (c.hasHealthcheck && c.health === 'unhealthy') return `Docker health check reports unhealthy${c.healthOutput ? `: ${excerpt(c.healthOutput)}` : ''}`;
  return undefined;
}

function pendingChecks(c: ContainerInfo, probes: ProbeState[]): string {
  const parts: string[] = [];
  if (c.hasHealthcheck && c.health !== 'healthy') parts.push(`Docker health is ${c.health}${c.healthOutput ? ` (${excerpt(c.healthOutput, 120)})` : ''}`);
  for (const s of probes.filter((p) => !p.passed)) parts.push(`probe ${describeProbe(s.probe)}: ${s.last?.detail ?? 'not run'}`);
  return parts.join('; ') || 'unknown';
}
