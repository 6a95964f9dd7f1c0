import { LABELS, containerName, isPreviousContainerName, legacyContainerName } from '../core/labels.js';
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
  const byService = new Map<string, ContainerInfo[]>();
  for (const c of containers) {
    const name = c.labels[LABELS.service];
    if (name) byService.set(name, [...(byService.get(name) ?? []), c]);
  }
  const sorted: Record<string, ObservedService> = {};
  for (const name of [...byService.keys()].sort()) {
    const all = (byService.get(name) as ContainerInfo[]).sort((a, b) => a.name.localeCompare(b.name));
    const current = pickCurrent(stack, name, all);
    sorted[name] = { name, ...(current ? { current } : {}), others: all.filter((c) => c !== current) };
  }
  return { stack, services: sorted };
}

/**
 * The live container of a service among those carrying its labels: not a previous one a
 * transaction keeps; by preference Compose's name, then the name agents before it used, then
 * the first by name (a `container_name`).
 */
function pickCurrent(stack: string, service: string, containers: ContainerInfo[]): ContainerInfo | undefined {
  const live = containers.filter((c) => !isPreviousContainerName(c.name));
  return live.find((c) => c.name === containerName(stack, service)) ?? live.find((c) => c.name === legacyContainerName(stack, service)) ?? live[0];
}

/** The live container of one service of the stack, found by its labels whatever its name. */
export async function serviceContainer(docker: DockerReader, stack: string, service: string): Promise<ContainerInfo | undefined> {
  const found = await docker.listContainers({ [LABELS.managed]: 'true', [LABELS.stack]: stack, [LABELS.service]: service });
  return pickCurrent(stack, service, [...found].sort((a, b) => a.name.localeCompare(b.name)));
}
