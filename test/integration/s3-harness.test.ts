/**
 * The S3 test server (s3rver in a child node process, test/harness/s3-server.ts) works with
 * the real @aws-sdk/client-s3 v3 and @aws-sdk/lib-storage for what the agent's S3 backup
 * store needs, and its known gaps are still what the harness documents.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../harness/s3-server.js';

const BUCKET = 'backups';
let s3: S3TestServer;
let client: S3Client;

beforeAll(async () => {
  const t0 = Date.now();
  s3 = await startS3Server({ buckets: [BUCKET] });
  client = s3.client();
  console.log(`[s3-harness] s3rver on ${s3.endpoint} up in ${Date.now() - t0} ms`);
});

afterAll(async () => {
  const dir = s3?.dir;
  await s3?.stop();
  if (dir) expect(existsSync(dir)).toBe(false);
});

/** 1 MiB chunks whose bytes depend on the chunk index, as a stream (no Content-Length known). */
function* chunks(mib: number): Generator<Buffer> {
  for (let i = 0; i < mib; i++) {
    const b = Buffer.alloc(1 << 20);
    for (let j = 0; j < b.length; j += 4096) b.writeUInt32BE((i * 7919 + j) >>> 0, j);
    yield b;
  }
}

async function sha256OfObject(key: string): Promise<{ sha: string; size: number }> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of res.Body as Readable) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha: hash.digest('hex'), size };
}

const httpStatus = (err: unknown): number | undefined => (err as S3ServiceException).$metadata?.httpStatusCode;

describe('S3 test server (s3rver) with @aws-sdk/client-s3 v3', () => {
  it('has the documented shape', () => {
    expect(s3.endpoint).toBe(`http://127.0.0.1:${s3.port}`);
    expect(s3.credentials).toEqual({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    expect(s3.region).toBe('us-east-1');
    expect(s3.clientConfig.forcePathStyle).toBe(true);
    expect(existsSync(join(s3.dir, BUCKET))).toBe(true);
  });

  it('PutObject, GetObject, HeadObject', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'hello.txt', Body: 'hello', ContentType: 'text/plain' }));
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'hello.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello');
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'hello.txt' }));
    expect(head.ContentLength).toBe(5);
    expect(head.ETag).toBe(`"${createHash('md5').update('hello').digest('hex')}"`);
    // a missing key is a typed NoSuchKey (GET) / NotFound (HEAD), 404
    const miss = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'nope' })).catch((e: unknown) => e);
    expect((miss as Error).name).toBe('NoSuchKey');
    expect(httpStatus(miss)).toBe(404);
    const missHead = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'nope' })).catch((e: unknown) => e);
    expect(httpStatus(missHead)).toBe(404);
  });

  it('ListObjectsV2 with Prefix and MaxKeys paginates (needs --openssl-legacy-provider), DeleteObjects', async () => {
    const keys = ['db/2024-01-01.dump', 'db/2024-01-02.dump', 'db/2024-01-03.dump', 'other/x'];
    for (const Key of keys) await client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }));

    const first = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'db/', MaxKeys: 2 }));
    expect(first.Contents?.map((o) => o.Key)).toEqual(['db/2024-01-01.dump', 'db/2024-01-02.dump']);
    expect(first.IsTruncated).toBe(true);
    expect(first.KeyCount).toBe(2);
    expect(first.NextContinuationToken).toBeTruthy();
    const second = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'db/', MaxKeys: 2, ContinuationToken: first.NextContinuationToken }),
    );
    expect(second.Contents?.map((o) => o.Key)).toEqual(['db/2024-01-03.dump']);
    expect(second.IsTruncated).toBe(false);
    expect(second.Contents?.[0]?.Size).toBe('db/2024-01-03.dump'.length);

    const del = await client.send(
      new DeleteObjectsCommand({
        Bucket: BUCKET,
        Delete: { Objects: [{ Key: 'db/2024-01-01.dump' }, { Key: 'db/2024-01-02.dump' }, { Key: 'db/missing' }] },
      }),
    );
    expect(del.Errors ?? []).toEqual([]);
    expect(del.Deleted?.map((d) => d.Key).sort()).toEqual(['db/2024-01-01.dump', 'db/2024-01-02.dump', 'db/missing']);
    const after = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'db/' }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(['db/2024-01-03.dump']);
  });

  it('lib-storage Upload of a 20 MiB stream, 5 MiB parts (multipart), reads back identical; SSE AES256 accepted but not echoed', async () => {
    const expected = createHash('sha256');
    for (const c of chunks(20)) expected.update(c);
    const parts = new Set<number>();
    const upload = new Upload({
      client,
      params: { Bucket: BUCKET, Key: 'big/20m.bin', Body: Readable.from(chunks(20)), ServerSideEncryption: 'AES256' },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    upload.on('httpUploadProgress', (p) => {
      if (p.part !== undefined) parts.add(p.part);
    });
    const t0 = Date.now();
    const out = await upload.done();
    const ms = Date.now() - t0;
    console.log(`[s3-harness] 20 MiB multipart upload in ${ms} ms`);
    expect([...parts].sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    expect(out.Key).toBe('big/20m.bin');
    // gap: real S3 gives "<md5 of the part md5s>-4"
    expect(out.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const got = await sha256OfObject('big/20m.bin');
    expect(got.size).toBe(20 * 1024 * 1024);
    expect(got.sha).toBe(expected.digest('hex'));

    // gap: SSE is accepted on the request but never reported back (real S3 says AES256);
    // the SDK's CRC32 checksum is not stored either
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'big/20m.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ContentLength).toBe(20 * 1024 * 1024);
    expect(head.ServerSideEncryption).toBeUndefined();
    expect(head.ChecksumCRC32).toBeUndefined();
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sse.txt', Body: 'x', ServerSideEncryption: 'AES256' }));
    expect((await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sse.txt' }))).ServerSideEncryption).toBeUndefined();
  });

  it('documented gaps: AbortMultipartUpload 405, If-None-Match ignored, secret not checked (unknown key id is 403)', async () => {
    const mp = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'aborted' }));
    const abort = await client
      .send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'aborted', UploadId: mp.UploadId }))
      .catch((e: unknown) => e);
    expect(httpStatus(abort)).toBe(405);

    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'once', Body: 'first' }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'once', Body: 'second', IfNoneMatch: '*' }));
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'once' }));
    expect(await got.Body?.transformToString()).toBe('second'); // real S3: 412 PreconditionFailed

    const wrongSecret = new S3Client({ ...s3.clientConfig, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'wrong' } });
    const unknownKey = new S3Client({ ...s3.clientConfig, credentials: { accessKeyId: 'NOPE', secretAccessKey: 'x' } });
    try {
      await wrongSecret.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'ws', Body: 'x' }));
      const denied = await unknownKey.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'uk', Body: 'x' })).catch((e: unknown) => e);
      expect((denied as Error).name).toBe('InvalidAccessKeyId');
      expect(httpStatus(denied)).toBe(403);
    } finally {
      wrongSecret.destroy();
      unknownKey.destroy();
    }
  });

  it('pause: requests fail with ECONNREFUSED; resume: same port, same objects', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'survives', Body: 'still here' }));
    const t0 = Date.now();
    await s3.pause();
    const tPause = Date.now() - t0;
    const noRetry = new S3Client({ ...s3.clientConfig, maxAttempts: 1 });
    try {
      const err = await noRetry.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'survives' })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
      // the default client retries (3 attempts) and then fails the same way
      const err2 = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'survives' })).catch((e: unknown) => e);
      expect((err2 as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    } finally {
      noRetry.destroy();
    }
    const t1 = Date.now();
    await s3.resume();
    console.log(`[s3-harness] pause ${tPause} ms, resume ${Date.now() - t1} ms`);
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'survives' }));
    expect(await got.Body?.transformToString()).toBe('still here');
    expect((await sha256OfObject('big/20m.bin')).size).toBe(20 * 1024 * 1024);
  });

  it('a second server can reuse a directory and a fixed port', async () => {
    await s3.pause();
    const again = await startS3Server({ dir: s3.dir, port: s3.port, buckets: [BUCKET, 'extra'] });
    try {
      expect(again.endpoint).toBe(s3.endpoint);
      const c = again.client();
      const got = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'survives' }));
      expect(await got.Body?.transformToString()).toBe('still here');
      await c.send(new PutObjectCommand({ Bucket: 'extra', Key: 'k', Body: 'v' }));
    } finally {
      await again.stop();
    }
    // a caller-provided dir is kept by stop()
    expect(existsSync(join(s3.dir, 'extra'))).toBe(true);
    await s3.resume();
  });
});
