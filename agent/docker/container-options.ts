import type { ContainerCreateOptions, MountSettings, NetworkCreateOptions } from 'dockerode';
import type { ContainerSpec, HealthcheckSpec, NetworkAttachment, NetworkSpec, RestartPolicy, RuntimeOptions } from '../model/desired.js';

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
  const options: ContainerCreateOptions & { platform?: string } = {
    name,
    // A query parameter of the create call (dockerode sends the options as both query and body).
    ...(spec.platform ? { platform: spec.platform } : {}),
    Image: spec.image,
    Env: Object.keys(spec.environment)
      .sort()
      .map((k) => `${k}=${spec.environment[k]}`),
    Labels: { ...spec.labels, ...agentLabels },
    ExposedPorts: exposed,
    HostConfig: {
      NetworkMode: spec.networkMode,
      PortBindings: bindings,
      // @types/dockerode wants every VolumeOptions field; the Engine takes NoCopy alone.
      Mounts: spec.volumes.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly, ...(m.noCopy ? { VolumeOptions: { NoCopy: true } as NonNullable<MountSettings['VolumeOptions']> } : {}) })),
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
  if (spec.hostname) options.Hostname = spec.hostname;
  if (spec.domainname) options.Domainname = spec.domainname;
  const host = options.HostConfig as NonNullable<ContainerCreateOptions['HostConfig']>;
  if (spec.links) host.Links = spec.links;
  if (spec.extraHosts) host.ExtraHosts = spec.extraHosts;
  if (spec.dns) host.Dns = spec.dns;
  if (spec.dnsSearch) host.DnsSearch = spec.dnsSearch;
  if (spec.dnsOptions) host.DnsOptions = spec.dnsOptions;
  if (spec.runtime) applyRuntime(options, host, spec.runtime);
  // The primary network at create; the adapter joins the others before the start.
  const primary = spec.networks?.[0];
  if (primary) options.NetworkingConfig = { EndpointsConfig: { [primary.network]: endpointConfig(primary) } };
  return options;
}

/** Compose's runtime keys into the create options, field by field as `docker compose` sets them. */
function applyRuntime(options: ContainerCreateOptions, host: NonNullable<ContainerCreateOptions['HostConfig']>, r: RuntimeOptions): void {
  if (r.workingDir) options.WorkingDir = r.workingDir;
  if (r.expose) for (const e of r.expose) (options.ExposedPorts as Record<string, object>)[e] = {};
  if (r.tty !== undefined) options.Tty = r.tty;
  if (r.stdinOpen !== undefined) options.OpenStdin = r.stdinOpen;
  if (r.readOnly !== undefined) host.ReadonlyRootfs = r.readOnly;
  if (r.privileged !== undefined) host.Privileged = r.privileged;
  if (r.capAdd) host.CapAdd = r.capAdd;
  if (r.capDrop) host.CapDrop = r.capDrop;
  if (r.securityOpt) host.SecurityOpt = r.securityOpt;
  if (r.groupAdd) host.GroupAdd = r.groupAdd;
  if (r.sysctls) host.Sysctls = r.sysctls;
  if (r.ulimits) host.Ulimits = r.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard }));
  if (r.shmSizeBytes !== undefined) host.ShmSize = r.shmSizeBytes;
  if (r.memoryBytes !== undefined) host.Memory = r.memoryBytes;
  if (r.memorySwapBytes !== undefined) host.MemorySwap = r.memorySwapBytes;
  if (r.memoryReservationBytes !== undefined) host.MemoryReservation = r.memoryReservationBytes;
  if (r.nanoCpus !== undefined) host.NanoCpus = r.nanoCpus;
  if (r.cpuShares !== undefined) host.CpuShares = r.cpuShares;
  if (r.cpuset) host.CpusetCpus = r.cpuset;
  if (r.pidsLimit !== undefined) host.PidsLimit = r.pidsLimit;
  if (r.oomScoreAdj !== undefined) host.OomScoreAdj = r.oomScoreAdj;
  if (r.devices) host.Devices = r.devices.map((d) => ({ PathOnHost: d.host, PathInContainer: d.container, CgroupPermissions: d.permissions }));
  if (r.tmpfs) host.Tmpfs = r.tmpfs;
  if (r.pidMode) host.PidMode = r.pidMode;
  if (r.ipcMode) host.IpcMode = r.ipcMode;
  if (r.usernsMode) host.UsernsMode = r.usernsMode;
  if (r.logging) host.LogConfig = { Type: r.logging.driver, Config: r.logging.options };
}

/** A network endpoint as Compose configures it: its aliases (the service name among them) and fixed addresses. */
export function endpointConfig(a: NetworkAttachment): { Aliases: string[]; IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } } {
  const out: { Aliases: string[]; IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } } = { Aliases: a.aliases };
  if (a.ipv4Address || a.ipv6Address) out.IPAMConfig = { ...(a.ipv4Address ? { IPv4Address: a.ipv4Address } : {}), ...(a.ipv6Address ? { IPv6Address: a.ipv6Address } : {}) };
  return out;
}

export function toNetworkOptions(spec: NetworkSpec, labels: Record<string, string>): NetworkCreateOptions {
  const options: NetworkCreateOptions = { Name: spec.name, Driver: spec.driver, Internal: spec.internal, Attachable: spec.attachable, EnableIPv6: spec.enableIpv6, Options: spec.driverOpts, Labels: labels, CheckDuplicate: true };
  if (spec.ipam) {
    options.IPAM = {
      Config: spec.ipam.config.map((c) => ({ ...(c.subnet ? { Subnet: c.subnet } : {}), ...(c.gateway ? { Gateway: c.gateway } : {}), ...(c.ipRange ? { IPRange: c.ipRange } : {}), ...(c.auxAddresses ? { AuxiliaryAddresses: c.auxAddresses } : {}) })),
      ...(spec.ipam.driver ? { Driver: spec.ipam.driver } : {}),
      ...(spec.ipam.options ? { Options: spec.ipam.options } : {}),
    };
  }
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
