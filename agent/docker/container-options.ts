import type { ContainerCreateOptions } from 'dockerode';
import type { ContainerSpec, HealthcheckSpec, RestartPolicy } from '../model/desired.js';

const NS_PER_MS = 1_000_000;

/** The Docker API create options for a spec: pure, so that it can be tested without an engine. */
export function toCreateOptions(name: string, spec: ContainerSpec, agentLabels: Record<string, string>): ContainerCreateOptions {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of spec.ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort === 0 ? '' : String(p.hostPort) });
  }
  const options: ContainerCreateOptions = {
    name,
    Image: spec.image,
    Env: Object.keys(spec.environment)
      .sort()
      .map((k) => `${k}=${spec.environment[k]}`),
    Labels: { ...spec.labels, ...agentLabels },
    ExposedPorts: exposed,
    HostConfig: {
      NetworkMode: spec.networkMode,
      PortBindings: bindings,
      Mounts: spec.volumes.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
      RestartPolicy: restartPolicy(spec.restart),
      Init: spec.init ?? false,
    },
  };
  if (spec.command) options.Cmd = spec.command;
  if (spec.entrypoint) options.Entrypoint = spec.entrypoint;
  if (spec.user) options.User = spec.user;
  if (spec.stopSignal) options.StopSignal = spec.stopSignal;
  if (spec.stopGracePeriodMs !== undefined) options.StopTimeout = Math.ceil(spec.stopGracePeriodMs / 1000);
  if (spec.healthcheck) options.Healthcheck = healthcheck(spec.healthcheck);
  return options;
}

export function restartPolicy(policy: RestartPolicy): { Name: string; MaximumRetryCount?: number } {
  const m = /^on-failure:(\d+)$/.exec(policy);
  if (m) return { Name: 'on-failure', MaximumRetryCount: Number(m[1]) };
  return { Name: policy === 'no' ? 'no' : policy };
}

export function fromRestartPolicy(p: { Name?: string; MaximumRetryCount?: number } | undefined): RestartPolicy {
  const name = p?.Name || 'no';
  if (name === 'on-failure' && p?.MaximumRetryCount) return `on-failure:${p.MaximumRetryCount}`;
  return name as RestartPolicy;
}

function healthcheck(hc: HealthcheckSpec): NonNullable<ContainerCreateOptions['Healthcheck']> {
  if (hc.disabled) return { Test: ['NONE'] };
  const out: NonNullable<ContainerCreateOptions['Healthcheck']> = {};
  if (hc.test.length > 0) out.Test = hc.test;
  if (hc.intervalMs !== undefined) out.Interval = hc.intervalMs * NS_PER_MS;
  if (hc.timeoutMs !== undefined) out.Timeout = hc.timeoutMs * NS_PER_MS;
  if (hc.startPeriodMs !== undefined) out.StartPeriod = hc.startPeriodMs * NS_PER_MS;
  if (hc.retries !== undefined) out.Retries = hc.retries;
  return out;
}
