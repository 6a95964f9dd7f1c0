import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { tarSingleFile } from '../../agent/backup/streams/tar-wrap.js';
import { AgentError } from '../../agent/core/errors.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function chunks(data: Buffer, size: number, counter?: { pulled: number }): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += size) {
        if (counter) counter.pulled += Math.min(size, data.length - i);
        yield data.subarray(i, i + size);
      }
    })(),
    { objectMode: false },
  );
}

async function untar(archive: Readable): Promise<{ header: Header; body: Buffer }[]> {
  const out: { header: Header; body: Buffer }[] = [];
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const parts: Buffer[] = [];
    // a failed archive destroys the entry stream too; the error is reported by pipeline
    stream.on('error', () => undefined);
    stream.on('data', (c) => parts.push(c as Buffer));
    stream.on('end', () => {
      out.push({ header, body: Buffer.concat(parts) });
      next();
    });
  });
  await pipeline(archive, ex);
  return out;
}

describe('tarSingleFile', () => {
  it.each([
    { name: 'dump.sql', size: 3 * 1024 * 1024, chunk: 65536, mode: undefined },
    { name: 'backup/dump.pgc', size: 3 * 1024 * 1024 + 333, chunk: 7000, mode: 0o640 },
    { name: `${'long-name-'.repeat(12)}.dump`, size: 1000, chunk: 100, mode: undefined },
    { name: 'empty', size: 0, chunk: 1, mode: undefined },
  ])('wraps $size bytes as $name', async ({ name, size, chunk, mode }) => {
    const data = randomBytes(size);
    const archive = mode === undefined ? tarSingleFile(name, size, chunks(data, chunk)) : tarSingleFile(name, size, chunks(data, chunk), mode);
    const entries = await untar(archive);
    expect(entries).toHaveLength(1);
    const [{ header, body }] = entries as [{ header: Header; body: Buffer }];
    expect(header).toMatchObject({ name, size, type: 'file', mode: mode ?? 0o600 });
    expect(sha(body)).toBe(sha(data));
  });

  it('reads the body only as fast as the archive is consumed', async () => {
    const size = 8 * 1024 * 1024;
    const counter = { pulled: 0 };
    const archive = tarSingleFile('big', size, chunks(Buffer.alloc(size), 65536, counter));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(counter.pulled).toBeLessThan(1024 * 1024);
    const entries = await untar(archive);
    expect(entries[0]?.body.length).toBe(size);
    expect(counter.pulled).toBe(size);
  });

  it.each([
    { name: 'shorter', declared: 1000, actual: 999 },
    { name: 'longer', declared: 1000, actual: 1001 },
    { name: 'much longer', declared: 10, actual: 100_000 },
  ])('fails when the body is $name than declared', async ({ declared, actual }) => {
    const archive = tarSingleFile('f', declared, chunks(Buffer.alloc(actual), 100));
    const err = await untar(archive).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ code: 'BACKUP_FAILED', data: { reason: 'size-mismatch', entry: 'f', expected: declared } });
  });

  it("fails with the body's error", async () => {
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(100));
    setImmediate(() => body.destroy(new Error('store connection reset')));
    await expect(untar(tarSingleFile('f', 1000, body))).rejects.toThrow('store connection reset');
  });

  it('destroys the body when the archive is destroyed', async () => {
    const body = chunks(Buffer.alloc(1024 * 1024), 1024);
    const archive = tarSingleFile('f', 1024 * 1024, body);
    archive.once('data', () => archive.destroy());
    await new Promise((r) => archive.once('close', r));
    await new Promise((r) => setImmediate(r));
    expect(body.destroyed).toBe(true);
  });

  it.each([[-1], [1.5], [Number.NaN]])('refuses size %s', (size) => {
    expect(() => tarSingleFile('f', size, Readable.from([]))).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});
