import { LABELS, containerName } from '../core/labels.js';
import type { DockerReader } from '../ports/docker.js';
import type { ActualState, ContainerInfo, ObservedService } from '../model/actual.js';

/** The stack as it runs: only containers that carry the agent's labels for this stack. */
export async function observeStack(docker: DockerReader, stack: string): Promise<ActualState> {
  const labels = { [LABELS.managed]: 'true', [LABELS.stack]: stack };
  const [containers, networks] = await Promise.all([docker.listContainers(labels), docker.listNetworks(labels)]);
  const actual = groupByService(stack, containers);
  actual.networks = Object.fromEntries(networks.map((n) => [n.name, { name: n.name, hash: n.labels[LABELS.networkHash] ?? '', containers: n.containers }]));
  return actual;
}

export function groupByService(stack: string, containers: ContainerInfo[]): ActualState {
  const services: Record<string, ObservedService> = {};
  for (const c of [...containers].sort((a, b) => a.name.localeCompare(b.name))) {
    const name = c.labels[LABELS.service];
    if (!name) continue;
    const entry = (services[name] ??= { name, others: [] });
    if (c.name === containerName(stack, name) && !entry.current) entry.current = c;
    else entry.others.push(c);
  }
  const sorted: Record<string, ObservedService> = {};
  for (const k of Object.keys(services).sort()) sorted[k] = services[k] as ObservedService;
  return { stack, services: sorted };
}
