import { Transform, type Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type ServerSideEncryption } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { BackupStore, StoredObject } from '../../ports/backup-store.js';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket ('' for none). */
  prefix: string;
  region?: string;
  /** An S3-compatible endpoint (MinIO, Ceph...); path-style addressing is then used. */
  endpoint?: string;
  forcePathStyle?: boolean;
  serverSideEncryption?: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
  /** Multipart part size: memory is about partSize x queueSize, whatever the size of the data. */
  partSizeBytes?: number;
  queueSize?: number;
}

/**
 * Backups in S3 (or an S3-compatible store). Credentials come from the standard AWS chain
 * (environment, shared files, instance role) and never appear in logs or manifests. Large
 * artifacts are streamed as multipart uploads; an object exists under its key only once the
 * upload completed.
 */
export function createS3Store(o: S3StoreOptions, client = new S3Client({ region: o.region ?? 'us-east-1', ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: o.forcePathStyle ?? true } : {}) })): BackupStore {
  const full = (key: string) => (o.prefix ? `${o.prefix.replace(/\/+$/, '')}/${key}` : key);
  const strip = (key: string) => (o.prefix ? key.slice(o.prefix.replace(/\/+$/, '').length + 1) : key);
  const fail = (what: string, err: unknown) => (err instanceof AgentError ? err : new AgentError('BACKUP_FAILED', `s3://${o.bucket}/${o.prefix}: ${what}: ${describe(err)}`, { cause: err }));
  const sse = o.serverSideEncryption ? { ServerSideEncryption: o.serverSideEncryption as ServerSideEncryption, ...(o.kmsKeyId ? { SSEKMSKeyId: o.kmsKeyId } : {}) } : {};
  return {
    kind: 's3',
    location: `s3://${o.bucket}/${o.prefix}`,
    async check(signal) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: o.bucket }), { abortSignal: signal });
      } catch (err) {
        throw fail('bucket not reachable', err);
      }
    },
    async put(key, body, signal) {
      let bytes = 0;
      const counted = body.pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            cb(null, chunk);
          },
        }),
      );
      body.once('error', (err) => counted.destroy(err));
      const upload = new Upload({
        client,
        params: { Bucket: o.bucket, Key: full(key), Body: counted, ...sse },
        partSize: o.partSizeBytes ?? 8 * 1024 * 1024,
        queueSize: o.queueSize ?? 2,
        leavePartsOnError: false,
      });
      const onAbort = () => void upload.abort().catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await upload.done();
        return { bytes };
      } catch (err) {
        body.destroy();
        throw fail(`uploading ${key}`, err);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
    async putSmall(key, data) {
      try {
        await client.send(new PutObjectCommand({ Bucket: o.bucket, Key: full(key), Body: data, ContentType: 'application/json', ...sse }));
      } catch (err) {
        throw fail(`writing ${key}`, err);
      }
    },
    async get(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: o.bucket, Key: full(key) }));
        if (!r.Body) throw new AgentError('BACKUP_FAILED', `s3://${o.bucket}/${full(key)}: the store answered with an empty body`, { data: { key } });
        return r.Body as Readable;
      } catch (err) {
        throw fail(`reading ${key}`, err);
      }
    },
    async getSmall(key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: o.bucket, Key: full(key) }));
        return await (r.Body as { transformToString(): Promise<string> }).transformToString();
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw fail(`reading ${key}`, err);
      }
    },
    async list(prefix) {
      const out: StoredObject[] = [];
      let token: string | undefined;
      try {
        do {
          const r = await client.send(new ListObjectsV2Command({ Bucket: o.bucket, Prefix: full(prefix), ContinuationToken: token, MaxKeys: 1000 }));
          for (const obj of r.Contents ?? []) if (obj.Key) out.push({ key: strip(obj.Key), size: obj.Size ?? 0 });
          token = r.IsTruncated ? r.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw fail('listing', err);
      }
      return out.sort((a, b) => a.key.localeCompare(b.key));
    },
    async delete(keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        try {
          await client.send(new DeleteObjectsCommand({ Bucket: o.bucket, Delete: { Objects: batch.map((k) => ({ Key: full(k) })), Quiet: true } }));
        } catch (err) {
          throw fail('deleting', err);
        }
      }
    },
  };
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && /^E[A-Z]+$/.test(code)) return code;
  const status = e?.$metadata?.httpStatusCode;
  return `${e?.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`.slice(0, 300);
}

