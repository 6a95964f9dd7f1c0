/** Labels the agent puts on everything it manages; nothing without them is ever touched. */
export const AGENT_LABEL_PREFIX = 'io.gitops-agent.';

export const LABELS = {
  managed: `${AGENT_LABEL_PREFIX}managed`,
  stack: `${AGENT_LABEL_PREFIX}stack`,
  service: `${AGENT_LABEL_PREFIX}service`,
  specHash: `${AGENT_LABEL_PREFIX}spec-hash`,
  revision: `${AGENT_LABEL_PREFIX}revision`,
  txId: `${AGENT_LABEL_PREFIX}tx`,
  /** On networks: the hash of the definition the agent created it from. */
  networkHash: `${AGENT_LABEL_PREFIX}network-hash`,
} as const;

/**
 * Docker Compose's labels, put beside the agent's so that `docker compose -p <stack> ps` and
 * `logs`, and the tools that read them (dashboards, log shippers, backup tools), see the stack.
 */
export const COMPOSE_LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  containerNumber: 'com.docker.compose.container-number',
  oneoff: 'com.docker.compose.oneoff',
  dependsOn: 'com.docker.compose.depends_on',
  network: 'com.docker.compose.network',
  volume: 'com.docker.compose.volume',
} as const;

export const COMPOSE_LABEL_PREFIX = 'com.docker.compose.';

/** The engine-side name of a service's live container: `container_name`, or Compose's `<stack>-<service>-1`. */
export function containerName(stack: string, service: string, explicit?: string): string {
  return explicit ?? `${stack}-${service}-1`;
}

/** The name agents before Compose naming gave a service's container; such a container is renamed on its next update. */
export function legacyContainerName(stack: string, service: string): string {
  return `${stack}-${service}`;
}

/** Whether a container name is that of a previous container a transaction keeps for rollback. */
export function isPreviousContainerName(name: string): boolean {
  return /\.prev-[^/]+$/.test(name);
}

/** Name of the previous container while a transaction keeps it for rollback: the whole transaction id, which is unique. */
export function previousContainerName(stack: string, service: string, txId: string): string {
  return `${stack}-${service}.prev-${txId}`;
}
