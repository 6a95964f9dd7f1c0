import type { Readable } from 'node:stream';
import type { ContainerId } from '../core/ids.js';
import type { Artifact, BackupManifest, BackupReason } from '../model/backup.js';

/** The backup an artifact belongs to, while it is being made. */
export interface BackupRef {
  id: string;
  host: string;
  stack: string;
  service: string;
  reason: BackupReason;
  /** The image that was running: a tag of each restic snapshot. */
  image: string;
  revision?: string;
}

/** Reports bytes as they are read: drives the progress line on a terminal. */
export type ProgressListener = (p: { service: string; file: string; bytes: number }) => void;

export interface ArtifactCheck {
  file: string;
  ok: boolean;
  bytes: number;
  problem?: string;
}

/**
 * Where backups are kept, in one of two formats: a restic repository (deduplicated, encrypted,
 * authenticated) or plain archives (tar.gz and a JSON manifest per backup, which any tool reads).
 * The backup engine and the restores are written against this port; a backup exists once its
 * manifest is committed, and an artifact without one is an incomplete backup's leftover.
 */
export interface BackupRepository {
  readonly format: 'restic' | 'archive';
  /**
   * Whether a manifest read from the store is one this agent (or a host sharing its manifest
   * key) wrote: archive manifests carry an HMAC; restic's are inside its authenticated repository.
   */
  authenticate(m: BackupManifest): 'ok' | 'unauthenticated' | 'altered';
  /** For people and manifests: a path or `s3://bucket/prefix`; never credentials. */
  readonly location: string;
  /** Opens the repository (creating it the first time) and checks it can be written: BACKUP_FAILED otherwise. */
  check(signal?: AbortSignal): Promise<void>;
  /** Whether database dumps should be uncompressed, so that a second dump deduplicates against the first. */
  readonly deduplicates: boolean;
  /** Stores a stream (a database dump) as the artifact `file`; resolves once it is stored. */
  saveStream(b: BackupRef, file: string, body: Readable, signal?: AbortSignal, onProgress?: ProgressListener): Promise<Pick<Artifact, 'bytes' | 'sha256' | 'compression' | 'snapshot' | 'added'>>;
  /** Stores a volume (by its engine name) or a path of a container, read from a stopped container. */
  saveFiles(b: BackupRef, file: string, from: { volumeName: string } | { container: ContainerId; path: string }, signal?: AbortSignal, onProgress?: ProgressListener): Promise<Pick<Artifact, 'bytes' | 'sha256' | 'compression' | 'snapshot' | 'added' | 'files'>>;
  /** Drops an artifact stored for a backup that will not be committed (a truncated dump). */
  discard(b: BackupRef, a: Pick<Artifact, 'file' | 'snapshot'>): Promise<void>;
  /** Writes the manifest: from then on the backup exists. */
  commit(m: BackupManifest): Promise<void>;
  /** Complete backups under `host/stack/service/` (a prefix of it), newest first. */
  list(prefix?: string): Promise<BackupManifest[]>;
  /**
   * Checks every artifact of a backup; writes nothing. Archives are always read back in full;
   * restic checks the repository's structure, and reads all its data back with `readData`.
   */
  verify(m: BackupManifest, options?: { readData?: boolean }): Promise<ArtifactCheck[]>;
  /** Deletes complete backups (the manifest first: a half-deleted backup is an incomplete one). */
  remove(ms: BackupManifest[]): Promise<void>;
  /** Deletes the leftovers of backups of a service that never got their manifest, except `keep`. */
  removeIncomplete(scope: { host: string; stack: string; service: string }, keep: ReadonlySet<string>): Promise<string[]>;
  /** A volume or path artifact back into a stopped container (checked first with `verify`); a volume is emptied first. `image` (the service's own) runs the helpers that empty and fill it. */
  restoreFiles(m: BackupManifest, a: Artifact, into: { container: ContainerId; image: string; volumeName?: string }): Promise<void>;
  /** An artifact's bytes as stored (checked first with `verify`): the dump. `done` reports a failed read. */
  open(m: BackupManifest, a: Artifact): Promise<{ body: Readable; done(): Promise<void> }>;
  /**
   * The restore drill of a volume or path artifact: read back in full into a throwaway place
   * (never what runs) and counted. restic: restored into a scratch volume with `--verify` and
   * compared with the snapshot's file list; archives: every byte hashed and every tar entry checked.
   */
  drillFiles(m: BackupManifest, a: Artifact, signal?: AbortSignal): Promise<{ files: number; bytes: number; problem?: string }>;
  /** Frees space left by removed and interrupted backups (restic: `prune`, at most once a day); a no-op when there is none to free. */
  maintain(signal?: AbortSignal): Promise<void>;
}
