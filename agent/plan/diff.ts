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
  if (from.containerName !== to.containerName) reasons.push(`container_name ${from.containerName ?? '(default)'} -> ${to.containerName ?? '(default)'}`);
  // The repository's files a service binds: which paths changed, by content.
  const filesOf = (s: ContainerSpec) => new Map(s.volumes.filter((m) => m.project).map((m) => [m.project!.path, m.project!.digest]));
  const [filesA, filesB] = [filesOf(from), filesOf(to)];
  const changedFiles = [...filesB].filter(([p, d]) => filesA.has(p) && filesA.get(p) !== d).map(([p]) => p);
  if (changedFiles.length > 0) reasons.push(`files changed in the repository: ${changedFiles.join(', ')}`);
  const sameExceptFiles = (s: ContainerSpec) => canonicalJson(s.volumes.map((m) => (m.project ? { ...m, source: m.project.path, project: undefined } : m)));
  if (sameExceptFiles(from) !== sameExceptFiles(to)) reasons.push('volumes changed');
  // Secrets and configs by name only: their content may be secret.
  const injected = (s: ContainerSpec) => Object.fromEntries((s.files ?? []).map((f) => [`${f.kind} ${f.name}`, canonicalJson(f)]));
  const files = describeKeyChanges(injected(from), injected(to));
  if (files) reasons.push(`secrets or configs changed (${files})`);
  const simple: [keyof ContainerSpec, string][] = [
    ['command', 'command'],
    ['entrypoint', 'entrypoint'],
    ['ports', 'ports'],
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
