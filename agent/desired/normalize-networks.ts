import { canonicalJson, sha256Hex } from '../core/canonical.js';
import type { NetworkAttachment, NetworkSpec } from '../model/desired.js';
import type { Report } from './normalize-ports-volumes.js';

type Raw = Record<string, unknown>;

/** The key of the stack's default network, as Compose names it. */
export const DEFAULT_NETWORK = 'default';

/** A top-level `networks:` entry as the agent models it; `default` is the stack's default network. */
export function normalizeNetwork(stack: string, key: string, raw: Raw | null | undefined): NetworkSpec {
  const r = raw ?? {};
  const external = r.external === true || (typeof r.external === 'object' && r.external !== null);
  const externalName = typeof r.external === 'object' && r.external !== null ? (r.external as { name?: string }).name : undefined;
  const spec: NetworkSpec = {
    name: externalName ?? (r.name as string | undefined) ?? (external ? key : `${stack}_${key}`),
    external,
    driver: (r.driver as string | undefined) ?? 'bridge',
    driverOpts: Object.fromEntries(Object.entries((r.driver_opts as Record<string, unknown> | undefined) ?? {}).map(([k, v]) => [k, String(v)])),
    internal: r.internal === true,
    attachable: r.attachable === true,
    enableIpv6: r.enable_ipv6 === true,
    labels: labelsOf(r.labels as Record<string, unknown> | string[] | undefined),
  };
  const ipam = r.ipam as { driver?: string; config?: Raw[]; options?: Record<string, string> } | undefined;
  if (ipam) {
    spec.ipam = {
      config: (ipam.config ?? []).map((c) => {
        const out: NonNullable<NetworkSpec['ipam']>['config'][number] = {};
        if (typeof c.subnet === 'string') out.subnet = c.subnet;
        if (typeof c.gateway === 'string') out.gateway = c.gateway;
        if (typeof c.ip_range === 'string') out.ipRange = c.ip_range;
        if (c.aux_addresses) out.auxAddresses = c.aux_addresses as Record<string, string>;
        return out;
      }),
    };
    if (ipam.driver) spec.ipam.driver = ipam.driver;
    if (ipam.options) spec.ipam.options = ipam.options;
  }
  return spec;
}

export interface NetworkScope {
  stack: string;
  service: string;
  /** The container name of a service of the stack (`container_name`, or Compose's default). */
  containerOf: (service: string) => string;
  /** Top-level network key -> its spec (with `default` whenever a service uses it). */
  networks: Record<string, NetworkSpec>;
}

export interface ServiceNetworking {
  networkMode: string;
  networks?: NetworkAttachment[];
  /** Services this one must come after: `network_mode: service:x`, `links`. */
  implicitDependencies: string[];
  /** Keys of the top-level networks it joins (`default` included). */
  uses: string[];
}

/**
 * A service's networking as Compose makes it: `network_mode` (with `service:<name>` resolved to
 * that service's container), or the networks it joins, by default the stack's default network;
 * the service name is an alias on every network it joins, so the other services reach it by name.
 */
export function normalizeServiceNetworking(raw: Raw, base: (string | number)[], scope: NetworkScope, report: Report): ServiceNetworking {
  const mode = raw.network_mode as string | undefined;
  const nets = raw.networks as string[] | Record<string, Raw | null> | undefined;
  const implicit: string[] = [];
  if (mode !== undefined) {
    if (nets !== undefined) report([...base, 'networks'], '`networks` cannot be combined with `network_mode` (Compose refuses it too): use one of them');
    const m = /^(service|container):(.+)$/.exec(mode);
    if (m?.[1] === 'service') {
      const target = m[2] as string;
      if (target === scope.service) report([...base, 'network_mode'], `a service cannot share its own network namespace`);
      implicit.push(target);
      return { networkMode: `container:${scope.containerOf(target)}`, implicitDependencies: implicit, uses: [] };
    }
    return { networkMode: mode, implicitDependencies: implicit, uses: [] };
  }
  const entries: [string, Raw | null][] = nets === undefined ? [[DEFAULT_NETWORK, null]] : Array.isArray(nets) ? nets.map((n) => [n, null]) : Object.entries(nets);
  const attachments: NetworkAttachment[] = [];
  for (const [key, opts] of entries) {
    const spec = scope.networks[key];
    if (!spec) {
      report([...base, 'networks', ...(Array.isArray(nets) ? [nets.indexOf(key)] : [key])], `network "${key}" is not declared under the top-level \`networks:\``);
      continue;
    }
    // The service name, and its hostname when it sets one, resolve for the others on the network.
    const hostname = typeof raw.hostname === 'string' ? [raw.hostname] : [];
    const a: NetworkAttachment = { network: spec.name, aliases: [...new Set([scope.service, ...hostname, ...(((opts?.aliases as string[] | undefined) ?? []))])].sort() };
    if (typeof opts?.ipv4_address === 'string') a.ipv4Address = opts.ipv4_address;
    if (typeof opts?.ipv6_address === 'string') a.ipv6Address = opts.ipv6_address;
    if (typeof opts?.priority === 'number') a.priority = opts.priority;
    if ((a.ipv4Address || a.ipv6Address) && !spec.ipam?.config.some((c) => c.subnet)) {
      report([...base, 'networks', key], `a fixed address needs a subnet in the ipam config of network "${key}"`);
    }
    attachments.push(a);
  }
  // Compose's order: the highest priority first (the primary network), then by name.
  attachments.sort((x, y) => (y.priority ?? 0) - (x.priority ?? 0) || x.network.localeCompare(y.network));
  const primary = attachments[0];
  return { networkMode: primary?.network ?? 'none', networks: attachments, implicitDependencies: implicit, uses: entries.map(([k]) => k).filter((k) => scope.networks[k]) };
}

/** `links: [db, "cache:redis"]`: Docker links to the services' containers; each is also a dependency. */
export function normalizeLinks(raw: unknown, containerOf: (service: string) => string): { links: string[]; services: string[] } | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  const links: string[] = [];
  const services: string[] = [];
  for (const l of raw as string[]) {
    const [service, alias] = l.split(':') as [string, string | undefined];
    services.push(service);
    links.push(`${containerOf(service)}:${alias ?? service}`);
  }
  return { links: links.sort(), services };
}

/** `extra_hosts` as a list (`host:ip` or `host=ip`) or a map, as `host:ip` entries. */
export function normalizeExtraHosts(raw: unknown): string[] | undefined {
  if (raw === undefined) return undefined;
  const entries = Array.isArray(raw) ? (raw as string[]).map((e) => e.replace(/^([^:=]+)=/, '$1:')) : Object.entries(raw as Record<string, string>).map(([h, ip]) => `${h}:${ip}`);
  return entries.length > 0 ? entries : undefined;
}

export function stringList(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  const list = Array.isArray(raw) ? raw.map(String) : [String(raw)];
  return list.length > 0 ? list : undefined;
}

function labelsOf(raw: Record<string, unknown> | string[] | undefined): Record<string, string> {
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((l) => [l.split('=')[0] as string, l.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(raw ?? {}).map(([k, v]) => [k, String(v)]));
}

/** The hash of a network's definition, kept in a label on the network: a changed definition is seen. */
export function networkHash(spec: NetworkSpec): string {
  return sha256Hex(canonicalJson(spec));
}
