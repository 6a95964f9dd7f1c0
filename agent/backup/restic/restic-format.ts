import type { BackupRef } from '../../ports/backup-repository.js';

/** The `artifact=` tag of a backup's manifest snapshot. */
export const MANIFEST_ARTIFACT = 'manifest';

/** What `restic snapshots --json` prints for each snapshot (the fields the agent reads). */
export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  paths: string[];
  tags?: string[];
}

/** The last line of `restic backup --json`. */
export interface ResticSummary {
  snapshot_id: string;
  data_added: number;
  total_bytes_processed: number;
  total_files_processed: number;
  files_new: number;
  files_changed: number;
  files_unmodified: number;
}

/** A restic tag holds no comma (it separates tags) and no whitespace: anything else is replaced. */
export function tagValue(v: string): string {
  return v.replace(/[,\s]/g, '_');
}

/** The tags of an artifact's snapshot: `gitops-agent`, then key=value pairs the agent reads back. */
export function artifactTags(b: BackupRef, artifact: string): string[] {
  const digest = /@(sha256:[0-9a-f]{64})$/.exec(b.image)?.[1];
  return [
    'gitops-agent',
    `backup=${tagValue(b.id)}`,
    `stack=${tagValue(b.stack)}`,
    `service=${tagValue(b.service)}`,
    `artifact=${tagValue(artifact)}`,
    `reason=${tagValue(b.reason)}`,
    `image=${tagValue(digest ?? b.image)}`,
    ...(b.revision ? [`revision=${tagValue(b.revision)}`] : []),
  ];
}

export function parseTags(tags: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) {
    const i = t.indexOf('=');
    if (i > 0) out[t.slice(0, i)] = t.slice(i + 1);
  }
  return out;
}

/** Where a volume is mounted in restic's container, and so its path in the snapshot: stable per service and artifact, so each backup finds its parent. */
export function snapshotPath(stack: string, service: string, artifact: string): string {
  return `/${stack}/${service}/${artifact}`;
}

/** The file name of a `--stdin` snapshot (restic keeps it at the top level). */
export function stdinName(stack: string, service: string, artifact: string): string {
  return `${stack}--${service}--${artifact}`;
}
