/**
 * The top-level `volumes:` and `networks:` of the files of one desired state, merged: each
 * declared once (or the same way in every file), named on the engine as Compose names them.
 */
import { canonicalJson } from '../core/canonical.js';
import type { ValidationIssue } from '../model/issues.js';
import type { NetworkSpec, VolumeSpec } from '../model/desired.js';
import { DEFAULT_NETWORK, normalizeNetwork } from './normalize-networks.js';
import { issueAt, type ParsedFile } from './parse.js';

/** A file of the desired state, parsed, with its value after interpolation and merging. */
export interface FileValue {
  parsed: ParsedFile;
  value: Record<string, unknown>;
}

export function mergeVolumes(files: FileValue[], stack: string, issues: ValidationIssue[]): Record<string, VolumeSpec> {
  const out: Record<string, VolumeSpec> = {};
  for (const fv of files) {
    const vols = (fv.value.volumes ?? {}) as Record<string, { name?: string; external?: boolean; labels?: Record<string, unknown> | string[]; driver?: string; driver_opts?: Record<string, unknown> } | null>;
    for (const [key, v] of Object.entries(vols)) {
      // As Compose names them: an existing (external) volume is the key itself unless named.
      const ext = v?.external as unknown;
      const external = ext === true || (typeof ext === 'object' && ext !== null);
      const externalName = typeof ext === 'object' && ext !== null ? (ext as { name?: string }).name : undefined;
      const spec: VolumeSpec = { name: externalName ?? v?.name ?? (external ? key : `${stack}_${key}`), external, labels: labelsOf(v?.labels) };
      if ((v?.driver && v.driver !== 'local') || v?.driver_opts) spec.driver = { name: v.driver ?? 'local', options: Object.fromEntries(Object.entries(v.driver_opts ?? {}).map(([k, o]) => [k, String(o)])) };
      const device = spec.driver?.options.device;
      // The engine would read a relative device against its own working directory.
      if (device !== undefined && (device.startsWith('.') || device.startsWith('~'))) issues.push(issueAt(fv.parsed, ['volumes', key, 'driver_opts', 'device'], `not supported: a relative device ("${device}"): the engine resolves it against its own working directory, not the project's; write the absolute path (or bind the path instead of a volume)`));
      const prev = out[key];
      if (prev && canonicalJson(prev) !== canonicalJson(spec)) issues.push(issueAt(fv.parsed, ['volumes', key], `volume "${key}" is declared differently in another file`, true));
      out[key] = spec;
    }
  }
  return out;
}

/** Top-level `networks:` of every file, plus the stack's `default` network unless a file declares it. */
export function mergeNetworks(files: FileValue[], stack: string, issues: ValidationIssue[]): Record<string, NetworkSpec> {
  const out: Record<string, NetworkSpec> = { [DEFAULT_NETWORK]: normalizeNetwork(stack, DEFAULT_NETWORK, undefined) };
  const seen = new Set<string>();
  for (const fv of files) {
    for (const [key, raw] of Object.entries((fv.value.networks ?? {}) as Record<string, Record<string, unknown> | null>)) {
      const spec = normalizeNetwork(stack, key, raw);
      if (seen.has(key) && canonicalJson(out[key]) !== canonicalJson(spec)) issues.push(issueAt(fv.parsed, ['networks', key], `network "${key}" is declared differently in another file`, true));
      seen.add(key);
      out[key] = spec;
    }
  }
  return out;
}

function labelsOf(raw: Record<string, unknown> | string[] | undefined): Record<string, string> {
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((l) => [l.split('=')[0] as string, l.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(raw ?? {}).map(([k, v]) => [k, String(v)]));
}
