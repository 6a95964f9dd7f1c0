/** A backup as the agent records it: its manifest and the artifacts it holds. */

export type ArtifactKind = 'postgres-dump' | 'volume' | 'path';

/** One file of a backup, with what is needed to check it and to put it back. */
export interface Artifact {
  /** File name inside the backup's directory. */
  file: string;
  kind: ArtifactKind;
  /** Bytes read (restic) or stored (archive). */
  bytes: number;
  /** archive: of the stored file. restic authenticates its data itself: of the stream for dumps, none for files. */
  sha256?: string;
  compression: 'gzip' | 'none' | 'restic';
  /** restic: the snapshot holding this artifact. */
  snapshot?: string;
  /** restic, volumes: the files the snapshot holds. */
  files?: number;
  /** restic: bytes this artifact added to the repository (after deduplication and compression). */
  added?: number;
  /** volume and path: where it was archived from in the container; the tar's top directory is its basename. */
  target?: string;
  /** volume: the key under top-level `volumes:` and the engine's volume name. */
  volume?: string;
  volumeName?: string;
  /** postgres-dump: where it came from. */
  database?: string;
  user?: string;
  dbService?: string;
}

export type BackupReason = 'update' | 'scheduled' | 'manual' | 'pre-restore';

/**
 * Written last, once every artifact is stored: a backup without its manifest is incomplete,
 * is never listed as a backup, and is deleted by the next backup of the service.
 */
export interface BackupManifest {
  version: 1;
  id: string;
  host: string;
  stack: string;
  service: string;
  reason: BackupReason;
  createdAt: string;
  finishedAt: string;
  image: string;
  specHash?: string;
  /** Source revision (commit) that described the service when it was backed up. */
  revision?: string;
  txId?: string;
  /** How volumes and paths were read: from a stopped container, or live. */
  consistency: 'stopped' | 'live' | 'none';
  store: string;
  /** Absent in manifests written before restic: archive. */
  format?: 'restic' | 'archive';
  artifacts: Artifact[];
  /** Archives: HMAC-SHA256 of the manifest without this field, under the host's manifest key. */
  mac?: string;
}


/** The outcome of one service's drill: kept per service, shown by `agent status`, sent as a notification. */
export interface DrillResult {
  service: string;
  ok: boolean;
  at: string;
  durationMs: number;
  backup?: string;
  backupCreatedAt?: string;
  bytes: number;
  /** One line per artifact: what was restored and what was found. */
  checks: string[];
  error?: string;
}
