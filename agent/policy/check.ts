/**
 * The operator's policy against a normalised desired state: every service, volume, network and
 * job. Pure; each finding names the setting that refuses it and where the desired state asks
 * for it, so the operator can tell "change the commit" from "allow it in the policy".
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { parseImageRef } from '../core/image-ref.js';
import type { DesiredService, JobSpec, Mount, NetworkSpec, Probe, VolumeSpec } from '../model/desired.js';
import { capability, globMatch, within, type OperatorPolicy } from './policy.js';

export interface PolicyFinding {
  /** Path in the desired-state files: `['services', 'web', 'volumes', 1]`. */
  path: (string | number)[];
  /** The policy setting that refuses it (`binds`, `networkModes`...). */
  setting: string;
  message: string;
}

export interface PolicySubject {
  stack: string;
  services: Record<string, DesiredService>;
  /** Each service's value as written (after interpolation and merging): to locate list entries. */
  raw: (service: string) => Record<string, unknown> | undefined;
  volumes: Record<string, VolumeSpec>;
  /** The networks the services join. */
  networks: Record<string, NetworkSpec>;
  jobs: Record<string, JobSpec>;
}

type Report = (path: (string | number)[], setting: string, message: string) => void;

export function checkPolicy(policy: OperatorPolicy, s: PolicySubject): PolicyFinding[] {
  const out: PolicyFinding[] = [];
  const report: Report = (path, setting, message) => out.push({ path, setting, message });
  if (!policy.stacks.some((g) => globMatch(g, s.stack))) report(['name'], 'stacks', `stack "${s.stack}" is not among the stacks this host runs (${policy.stacks.join(', ')})`);
  for (const svc of Object.values(s.services)) checkService(policy, s, svc, (path, setting, message) => report(['services', svc.name, ...path], setting, message));
  for (const [key, v] of Object.entries(s.volumes)) checkVolume(policy, s.stack, v, (path, setting, message) => report(['volumes', key, ...path], setting, message));
  for (const [key, n] of Object.entries(s.networks)) {
    if (n.external) {
      if (!policy.externalNetworks.some((g) => globMatch(g, n.name))) report(['networks', key], 'externalNetworks', `joins the existing network "${n.name}", which another project owns; list it in externalNetworks to allow it`);
    } else if (!policy.networkDrivers.some((g) => globMatch(g, n.driver || 'bridge'))) report(['networks', key, 'driver'], 'networkDrivers', `network driver "${n.driver}" is not allowed (${policy.networkDrivers.join(', ')}): it can put containers on the host's own network`);
    // A network named like another project's would be adopted, not created: external in all but name.
    else if (!n.name.startsWith(`${s.stack}_`) && !policy.externalNetworks.some((g) => globMatch(g, n.name))) report(['networks', key, 'name'], 'externalNetworks', `network name "${n.name}" is not one of this stack's (${s.stack}_*): an existing network of that name would be joined; list it in externalNetworks to allow it`);
    else if (n.driverOpts['com.docker.network.bridge.name'] !== undefined && !policy.externalNetworks.some((g) => globMatch(g, n.name))) report(['networks', key, 'driver_opts'], 'externalNetworks', `com.docker.network.bridge.name puts the network on the host bridge ${n.driverOpts['com.docker.network.bridge.name']}; list the network in externalNetworks to allow it`);
  }
  for (const job of Object.values(s.jobs)) if (job.certbot) checkJob(policy, s.stack, job, (path, setting, message) => report(['x-agent', 'jobs', job.name, 'certbot', ...path], setting, message));
  return out;
}

function checkService(policy: OperatorPolicy, s: PolicySubject, svc: DesiredService, report: Report): void {
  const spec = svc.spec;
  const raw = s.raw(svc.name) ?? {};
  checkImage(policy, spec.image, policy.requireDigest, report);
  if (spec.user !== undefined && isRoot(spec.user) && !policy.allowRootUser) report(['user'], 'allowRootUser', `runs as root ("user: ${spec.user}"); with any host access that is the host's root`);
  const rt = spec.runtime ?? {};
  if (rt.privileged && !policy.allowPrivileged) report(['privileged'], 'allowPrivileged', 'a privileged container has every capability and every device of the host');
  for (const cap of rt.capAdd ?? []) {
    const name = capability(cap);
    if (!policy.capabilities.includes(name) && !policy.capabilities.includes('ALL')) report(['cap_add'], 'capabilities', `adds the capability ${name}, which the policy does not allow (${policy.capabilities.join(', ') || 'none'})`);
  }
  for (const d of rt.devices ?? []) {
    const host = posix.normalize(d.host);
    if (!policy.devices.some((p) => within(host, p))) report(['devices'], 'devices', `maps the host device ${host}, which the policy does not allow (${policy.devices.join(', ') || 'none'})`);
  }
  for (const [field, key] of [['pidMode', 'pid'], ['ipcMode', 'ipc'], ['usernsMode', 'userns_mode']] as const) {
    if (rt[field] === 'host' && !policy.allowHostNamespaces) report([key], 'allowHostNamespaces', `${key}: host shares the host's ${key === 'userns_mode' ? 'user' : key} namespace`);
    // Another project's container's namespace: its processes, their files and environment.
    if (rt[field]?.startsWith('container:') && !String(raw[key] ?? '').startsWith('service:') && !policy.networkModes.includes('container')) report([key], 'networkModes', `${key}: ${rt[field]} joins the namespace of a container outside the stack; write service:<name> for one of the stack's, or allow container in networkModes`);
  }
  for (const opt of rt.securityOpt ?? []) {
    if (!policy.securityOptions.some((g) => globMatch(g, opt))) report(['security_opt'], 'securityOptions', `security_opt "${opt}" is not allowed (${policy.securityOptions.join(', ')}): unconfined profiles lift the container's confinement`);
  }
  const mode = networkModeKind(spec.networkMode, spec.networks !== undefined, String(raw.network_mode ?? '').startsWith('service:'));
  if (mode && !policy.networkModes.includes(mode)) report(['network_mode'], 'networkModes', `network_mode "${spec.networkMode}" (${mode}) is not allowed (${policy.networkModes.join(', ')})${mode === 'host' ? ': the container would listen on, and reach, everything the host does' : ''}`);
  spec.volumes.forEach((m) => checkMount(policy, s.stack, m, (path, setting, message) => report(['volumes', ...mountIndex(raw.volumes, m.target), ...path], setting, message)));
  svc.agent.health.probes.forEach((p, i) => checkProbe(policy, p, (setting, message) => report(['x-agent', 'health', 'probes', i], setting, message)));
}

function checkImage(policy: OperatorPolicy, image: string, requireDigest: boolean, report: Report, extra?: string[]): void {
  const ref = parseImageRef(image);
  if (!ref) return; // the loader refuses it already
  if (!policy.registries.some((g) => globMatch(g, ref.registry))) report(['image'], 'registries', `image "${image}" comes from the registry ${ref.registry}, which the policy does not allow (${policy.registries.join(', ')})`);
  else if (!policy.repositories.some((g) => globMatch(g, ref.name))) report(['image'], 'repositories', `image ${ref.name} is not among the allowed repositories (${policy.repositories.join(', ')})`);
  if (extra && !extra.some((g) => globMatch(g, ref.name))) report(['image'], 'jobImages', `job image ${ref.name} is not among the allowed job images (${extra.join(', ') || 'none'})`);
  if (requireDigest && !ref.digest) report(['image'], extra ? 'jobImages.requireDigest' : 'requireDigest', `image "${image}" is not pinned by digest, and the policy requires it: pin it (name:tag@sha256:...) with the digest the registry reports`);
}

function checkMount(policy: OperatorPolicy, stack: string, m: Mount, report: Report): void {
  if (m.type === 'volume') {
    if (!volumeNameAllowed(policy, stack, m.source)) report([], 'volumes.names', `mounts the volume "${m.source}", which is not a volume of this stack (allowed: ${policy.volumes.names.join(', ')})`);
    return;
  }
  // Files of the repository and data directories are made by the agent, under its own roots.
  if (m.project || m.dataDir) return;
  checkHostPath(policy, m.source, m.readOnly, report);
}

/** A host path a container would see: allowed by a `binds` rule, and no denied path reached. */
function checkHostPath(policy: OperatorPolicy, given: string, readOnly: boolean, report: Report): void {
  const source = posix.normalize(given).replace(/(.)\/+$/, '$1');
  const rules = policy.binds.filter((r) => within(source, r.path));
  if (rules.length === 0) {
    report([], 'binds', `binds the host path ${source}, which is not under an allowed path (${policy.binds.map((b) => b.path).join(', ') || 'none'})`);
    return;
  }
  for (const d of policy.deniedPaths) {
    const inside = d === '/' ? source === '/' : within(source, d);
    const contains = d !== '/' && source !== d && within(d, source);
    // A rule naming a path at or inside the denied one is the operator's explicit exception; a
    // path that holds a denied one is never allowed (binding /var would hand out the socket).
    const excepted = inside && rules.some((r) => within(r.path, d));
    if ((inside || contains) && !excepted) {
      report([], 'binds', contains ? `binds ${source}, which holds ${d}: a container would reach it` : `binds ${source}${source === d ? '' : `, inside ${d}`}, a path the policy denies unless a binds rule names it`);
      return;
    }
  }
  if (!readOnly && (policy.bindsReadOnly || rules.some((r) => r.readOnly))) report([], policy.bindsReadOnly ? 'bindsReadOnly' : 'binds', `binds ${source} read-write; the policy allows it read-only only (add :ro)`);
}

function checkVolume(policy: OperatorPolicy, stack: string, v: VolumeSpec, report: Report): void {
  if (v.external && !volumeNameAllowed(policy, stack, v.name)) report([], 'volumes.names', `uses the existing volume "${v.name}", which is not among the allowed volume names (${policy.volumes.names.join(', ')})`);
  if (!v.driver) return;
  if (!policy.volumes.drivers.some((g) => globMatch(g, v.driver!.name))) report(['driver'], 'volumes.drivers', `volume driver "${v.driver.name}" is not allowed (${policy.volumes.drivers.join(', ')})`);
  const o = v.driver.options;
  if (v.driver.name !== 'local' || Object.keys(o).length === 0) return;
  // The local driver with `o: bind` is a bind of `device`: the same rules as a bind. Any other
  // filesystem it mounts (a disk, proc, an overlay of /) only when its type is allowed.
  if (/(^|,)r?bind(,|$)/.test(o.o ?? '')) {
    if (o.device === undefined) report(['driver_opts'], 'binds', 'a bind volume without a device');
    else checkHostPath(policy, o.device, /(^|,)ro(,|$)/.test(o.o ?? ''), (path, setting, message) => report(['driver_opts', 'device', ...path], setting, message));
    return;
  }
  if (!policy.volumes.types.some((g) => globMatch(g, o.type ?? ''))) report(['driver_opts'], 'volumes.types', `the local driver would mount ${o.type ? `a ${o.type} filesystem` : 'a filesystem'}${o.device ? ` from ${o.device}` : ''}: allowed types are ${policy.volumes.types.join(', ') || 'none'} (a bind, o: bind, follows the binds rules)`);
}

function checkJob(policy: OperatorPolicy, stack: string, job: JobSpec, report: Report): void {
  const c = job.certbot as NonNullable<JobSpec['certbot']>;
  checkImage(policy, c.image, policy.jobImages.requireDigest, report, policy.jobImages.allow);
  if (c.networkMode === 'host' && !policy.networkModes.includes('host')) report(['networkMode'], 'networkModes', 'a job on the host network is not allowed (networkModes has no host)');
  c.volumes.forEach((m, i) => checkMount(policy, stack, m, (path, setting, message) => report(['volumes', i, ...path], setting, message)));
}

function volumeNameAllowed(policy: OperatorPolicy, stack: string, name: string): boolean {
  return policy.volumes.names.some((g) => globMatch(g.replaceAll('${stack}', stack), name));
}

function checkProbe(policy: OperatorPolicy, p: Probe, report: (setting: string, message: string) => void): void {
  let host: string;
  if (p.kind === 'exec') return;
  if (p.kind === 'tcp') host = p.host;
  else {
    try {
      host = new URL(p.url).hostname;
    } catch {
      return; // the loader refuses it already
    }
  }
  host = canonicalHost(host);
  const why = metadataAddress(host);
  if (why) report('probeHosts', `probes ${host}, ${why}: never allowed`);
  else if (!policy.probeHosts.some((g) => globMatch(g, host))) report('probeHosts', `probes ${host}, which is not among the hosts the agent's probes may reach (${policy.probeHosts.join(', ')})`);
}

/**
 * A host as the probe will reach it: numeric IPv4 forms (`2852039166`, `169.254.43518`) and
 * IPv6 spellings canonicalised by the URL parser, IPv4-mapped IPv6 as the IPv4 address.
 */
export function canonicalHost(given: string): string {
  const bare = given.replace(/^\[(.*)\]$/, '$1');
  let host: string;
  try {
    host = new URL(`http://${isIP(bare) === 6 ? `[${bare}]` : bare}/`).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  } catch {
    return bare.toLowerCase();
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped) {
    const n = (parseInt(mapped[1] as string, 16) << 16) + parseInt(mapped[2] as string, 16);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
  return host.replace(/^::ffff:/, '');
}

/** Cloud instance-metadata endpoints (credentials of the host's role are served there). */
export function metadataAddress(host: string): string | undefined {
  const h = host.replace(/\.$/, '');
  if (['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal'].includes(h)) return 'a cloud metadata name';
  if (isIP(h) === 4) {
    const [a, b, c] = h.split('.').map(Number);
    if (a === 169 && b === 254 && (c === 169 || c === 170)) return 'a cloud metadata address';
    if (h === '100.100.100.200') return 'a cloud metadata address';
  }
  if (isIP(h) === 6 && /^fd00:ec2::/.test(h)) return 'a cloud metadata address';
  if (/^::ffff:169\.254\.(169|170)\./.test(h)) return 'a cloud metadata address';
  return undefined;
}

/** `service`: written `service:<name>` (one of the stack's); `container:<name>` is any container, whatever its name. */
function networkModeKind(mode: string, joinsNetworks: boolean, ofAService: boolean): OperatorPolicy['networkModes'][number] | undefined {
  if (joinsNetworks) return undefined; // the stack's own networks
  if (mode === 'host' || mode === 'bridge' || mode === 'none') return mode;
  if (mode.startsWith('container:')) return ofAService ? 'service' : 'container';
  return undefined;
}

function isRoot(user: string): boolean {
  const name = (user.split(':')[0] as string).trim();
  return name === 'root' || (/^[0-9]+$/.test(name) && Number(name) === 0);
}

/** The index of the entry of a service's `volumes:` list that mounts `target`, when it can be told. */
function mountIndex(list: unknown, target: string): number[] {
  if (!Array.isArray(list)) return [];
  const i = list.findIndex((e) => (typeof e === 'string' ? e.split(':')[1] === target : e && typeof e === 'object' && (e as { target?: unknown }).target === target));
  return i >= 0 ? [i] : [];
}
