import { COMPOSE_LABELS, LABELS } from '../core/labels.js';
import type { Journal, JournalNew } from '../model/journal.js';

/** The agent's labels, and Compose's so that `docker compose -p <stack> ps`/`logs` and the tools that read them see the service. */
export function agentLabels(j: Pick<Journal, 'stack' | 'service' | 'revision' | 'txId'>, target: Pick<JournalNew, 'dependsOn' | 'hash'>): Record<string, string> {
  return {
    [COMPOSE_LABELS.project]: j.stack,
    [COMPOSE_LABELS.service]: j.service,
    [COMPOSE_LABELS.containerNumber]: '1',
    [COMPOSE_LABELS.oneoff]: 'False',
    ...(target.dependsOn.length > 0 ? { [COMPOSE_LABELS.dependsOn]: target.dependsOn.map((d) => `${d.service}:${d.condition}:${d.restart === true}`).join(',') } : {}),
    [LABELS.managed]: 'true',
    [LABELS.stack]: j.stack,
    [LABELS.service]: j.service,
    [LABELS.specHash]: target.hash,
    [LABELS.revision]: j.revision,
    [LABELS.txId]: j.txId,
  };
}

/** Compose's labels of a named volume or network of the stack: its key is the engine name less the `<stack>_` prefix. */
export function composeResourceLabels(stack: string, kind: 'volume' | 'network', name: string): Record<string, string> {
  const key = name.startsWith(`${stack}_`) ? name.slice(stack.length + 1) : name;
  return { [COMPOSE_LABELS.project]: stack, [COMPOSE_LABELS[kind]]: key };
}
