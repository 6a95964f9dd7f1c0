import { canonicalJson } from '../core/canonical.js';
import { describeImageChange } from '../core/image-ref.js';
import type { ContainerSpec } from '../model/desired.js';

/**
 * Human reasons for the differences between two specs. Environment values are never shown,
 * only the names of the variables, because they may be secrets.
 */
export function describeSpecChanges(from: ContainerSpec, to: ContainerSpec): string[] {
  const reasons: string[] = [];
  if (from.image !== to.image) reasons.push(describeImageChange(from.image, to.image));
  const env = describeKeyChanges(from.environment, to.environment);
  if (env) reasons.push(`environment changed (${env})`);
  const labels = describeKeyChanges(from.labels, to.labels);
  if (labels) reasons.push(`labels changed (${labels})`);
  if (from.networkMode !== to.networkMode) reasons.push(`network_mode ${from.networkMode} -> ${to.networkMode}`);
  if (from.restart !== to.restart) reasons.push(`restart ${from.restart} -> ${to.restart}`);
  const simple: [keyof ContainerSpec, string][] = [
    ['command', 'command'],
    ['entrypoint', 'entrypoint'],
    ['ports', 'ports'],
    ['volumes', 'volumes'],
    ['healthcheck', 'healthcheck'],
    ['user', 'user'],
    ['init', 'init'],
    ['stopGracePeriodMs', 'stop_grace_period'],
    ['stopSignal', 'stop_signal'],
    ['networks', 'networks'],
    ['runtime', 'runtime options (limits, privileges, namespaces...)'],
  ];
  for (const [key, label] of simple) {
    if (canonicalJson(from[key] ?? null) !== canonicalJson(to[key] ?? null)) reasons.push(`${label} changed`);
  }
  return reasons;
}

function describeKeyChanges(a: Record<string, string>, b: Record<string, string>): string {
  const added = Object.keys(b).filter((k) => !(k in a)).sort();
  const removed = Object.keys(a).filter((k) => !(k in b)).sort();
  const changed = Object.keys(b).filter((k) => k in a && a[k] !== b[k]).sort();
  const parts: string[] = [];
  if (added.length) parts.push(`added ${added.join(', ')}`);
  if (removed.length) parts.push(`removed ${removed.join(', ')}`);
  if (changed.length) parts.push(`changed ${changed.join(', ')}`);
  return parts.join('; ');
}
