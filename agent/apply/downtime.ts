/**
 * How long a stop-first transaction kept its service down, from its journal's trail: from the
 * moment the old container was stopped to the moment a container served again and passed its
 * health gate (the new one: the gate passed; the old one after a rollback: checked again). An
 * upper bound: a container may answer before its gate has seen enough to pass.
 */
import type { Journal } from '../model/journal.js';

export function downtimeMs(trail: Journal['trail']): number | undefined {
  const stopped = trail.find((t) => t.phase === 'stop-old');
  if (!stopped) return undefined;
  const from = Date.parse(stopped.at);
  const back = trail.find((t) => Date.parse(t.at) >= from && t !== stopped && (t.phase === 'remove-old' || t.phase === 'finish'));
  return back ? Math.max(0, Date.parse(back.at) - from) : undefined;
}
