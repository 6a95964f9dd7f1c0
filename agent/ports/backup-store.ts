import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
}

/**
 * Where backups go. Keys are `/`-separated. Only the store adapters import the file system or
 * the AWS SDK; the backup engine streams through this port, so memory does not grow with the
 * size of the data.
 */
export interface BackupStore {
  readonly kind: 'local' | 's3';
  /** For people and manifests: a path or `s3://bucket/prefix`; never credentials. */
  readonly location: string;
  /** Fails with BACKUP_FAILED when the store cannot be written: checked before an update changes anything. */
  check(signal?: AbortSignal): Promise<void>;
  /** Streams a body in; resolves once it is stored durably under its final key, never before. */
  put(key: string, body: Readable, signal?: AbortSignal): Promise<{ bytes: number }>;
  /** A small object written atomically (the manifest). */
  putSmall(key: string, data: string): Promise<void>;
  get(key: string): Promise<Readable>;
  getSmall(key: string): Promise<string | undefined>;
  /** Every object under a prefix, recursively. */
  list(prefix: string): Promise<StoredObject[]>;
  delete(keys: string[]): Promise<void>;
}
