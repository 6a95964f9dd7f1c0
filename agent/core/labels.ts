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

/** The engine-side name of a service's live container. */
export function containerName(stack: string, service: string): string {
  return `${stack}-${service}`;
}

/** Name of the previous container while a transaction keeps it for rollback: the whole transaction id, which is unique. */
export function previousContainerName(stack: string, service: string, txId: string): string {
  return `${stack}-${service}.prev-${txId}`;
}
