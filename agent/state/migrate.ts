import type { AgentState, ServiceState } from '../model/agent-state.js';

type OlderService = Omit<ServiceState, 'waiting'> & { failed?: ServiceState['held']; waiting?: ServiceState['waiting'] | string };

/**
 * Reads a state.json written by any earlier version of the agent into today's shape, so an
 * upgrade never loses what was held or pending:
 * - `services.<name>.failed` is now `services.<name>.held`;
 * - `services.<name>.waiting` was a sentence; it is now a reason and a message.
 */
export function migrateState(raw: unknown): AgentState {
  const s = raw as Omit<AgentState, 'services'> & { services?: Record<string, OlderService> };
  s.conditions ??= [];
  const services: Record<string, ServiceState> = {};
  for (const [name, svc] of Object.entries(s.services ?? {})) {
    const { failed, waiting, ...rest } = svc;
    const next: ServiceState = rest;
    if (failed !== undefined && next.held === undefined) next.held = failed;
    if (typeof waiting === 'string') next.waiting = { reason: waiting.startsWith('busy') ? 'busy' : 'dependency-not-ready', message: waiting };
    else if (waiting) next.waiting = waiting;
    services[name] = next;
  }
  return { ...s, services } as AgentState;
}
