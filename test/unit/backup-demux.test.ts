import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createDockerDemux } from '../../agent/docker/demux.js';
import { AgentError } from '../../agent/core/errors.js';

function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

async function run(chunks: Buffer[], opts: { stderrLimitBytes?: number } = {}) {
  const demux = createDockerDemux(opts);
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), demux.stdout, async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return { stdout: Buffer.concat(out).toString(), stderr: demux.stderrText() };
}

async function failure(chunks: Buffer[]): Promise<AgentError> {
  const err = await run(chunks).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  return err as AgentError;
}

const stream = Buffer.concat([
  frame(1, 'hello '),
  frame(2, 'warning: x\n'),
  frame(1, ''),
  frame(2, ''),
  frame(1, 'world'),
  frame(0, '!'),
  frame(2, 'done\n'),
]);

describe('createDockerDemux', () => {
  it.each(Array.from({ length: stream.length + 1 }, (_, i) => [i]))('splits at byte %i', async (at) => {
    const r = await run([stream.subarray(0, at), stream.subarray(at)]);
    expect(r).toEqual({ stdout: 'hello world!', stderr: 'warning: x\ndone\n' });
  });

  it.each([[1], [3], [7], [8], [9], [13]])('reads the stream in chunks of %i bytes', async (size) => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
    expect(await run(chunks)).toEqual({ stdout: 'hello world!', stderr: 'warning: x\ndone\n' });
  });

  it('passes an empty stream', async () => {
    expect(await run([])).toEqual({ stdout: '', stderr: '' });
  });

  it.each([
    { chunkSize: 4096, payload: 5 * 1024 * 1024 },
    { chunkSize: 65536, payload: 5 * 1024 * 1024 },
  ])('streams $payload bytes in $chunkSize-byte chunks to a slow consumer with bounded buffers', async ({ chunkSize, payload }) => {
    const data = Buffer.alloc(payload, 0);
    for (let i = 0; i < payload; i += 4096) data.writeUInt32BE(i, i);
    // one huge stdout frame, with stderr frames around it, read lazily chunk by chunk
    const raw = Buffer.concat([frame(2, 'start\n'), frame(1, data), frame(2, 'end\n'), frame(1, 'tail')]);
    const demux = createDockerDemux({});
    const t = demux.stdout;
    let maxReadable = 0;
    let maxWritable = 0;
    const sample = () => {
      maxReadable = Math.max(maxReadable, t.readableLength);
      maxWritable = Math.max(maxWritable, t.writableLength);
    };
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < raw.length; i += chunkSize) {
          sample();
          yield raw.subarray(i, i + chunkSize);
        }
      })(),
      { objectMode: false },
    );
    const hash = createHash('sha256');
    let received = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        sample();
        hash.update(chunk);
        received += chunk.length;
        setImmediate(cb);
      },
    });
    await pipeline(source, t, slow);

    const expected = createHash('sha256').update(data).update('tail').digest('hex');
    expect(received).toBe(payload + 4);
    expect(hash.digest('hex')).toBe(expected);
    expect(demux.stderrText()).toBe('start\nend\n');
    const bound = t.writableHighWaterMark + t.readableHighWaterMark + 2 * chunkSize;
    expect(maxReadable).toBeLessThanOrEqual(bound);
    expect(maxWritable).toBeLessThanOrEqual(bound);
  });

  it.each([
    { limit: 0, total: 5000, frameSize: 100 },
    { limit: 10, total: 5000, frameSize: 100 },
    { limit: 1024, total: 100_000, frameSize: 777 },
    { limit: 1024, total: 500, frameSize: 50 },
    { limit: undefined, total: 200_000, frameSize: 70_000 },
  ])('keeps the last $limit bytes of $total bytes of stderr', async ({ limit, total, frameSize }) => {
    let text = '';
    for (let i = 0; text.length < total; i++) text += `line ${i}\n`;
    text = text.slice(0, total);
    const frames: Buffer[] = [];
    for (let i = 0; i < text.length; i += frameSize) frames.push(frame(2, text.slice(i, i + frameSize)));
    const r = await run([Buffer.concat([frame(1, 'out'), ...frames])], { stderrLimitBytes: limit });
    const keep = limit ?? 16 * 1024;
    expect(r.stdout).toBe('out');
    expect(r.stderr).toBe(keep === 0 ? '' : text.slice(-keep));
  });

  it('drops a multi-byte character cut by the stderr limit rather than showing garbage', async () => {
    // the last 3 bytes are the last 2 of the 3 bytes of '€', then 'b'
    const r = await run([frame(2, 'aé€b')], { stderrLimitBytes: 3 });
    expect(r.stderr).toBe('b');
  });

  it.each([
    { name: 'a partial header', input: stream.subarray(0, stream.length - 5 - 8 + 3), headerBytes: 3, missing: 0 },
    { name: 'a header without payload', input: Buffer.concat([frame(1, 'ok'), frame(1, 'abc').subarray(0, 8)]), headerBytes: 0, missing: 3 },
    { name: 'a partial payload', input: frame(1, Buffer.alloc(100_000)).subarray(0, 50_008), headerBytes: 0, missing: 50_000 },
    { name: 'a partial stderr payload', input: frame(2, 'boom boom').subarray(0, 12), headerBytes: 0, missing: 5 },
  ])('fails on a stream truncated in $name', async ({ input, headerBytes, missing }) => {
    const err = await failure([input]);
    expect(err.code).toBe('BACKUP_FAILED');
    expect(err.data).toMatchObject({ reason: 'truncated', headerBytes, missingPayloadBytes: missing });
  });

  it('reports the stderr tail with a truncation', async () => {
    const err = await failure([Buffer.concat([frame(2, 'pg_dump: fatal\n'), frame(1, 'abc').subarray(0, 9)])]);
    expect(err.data).toMatchObject({ reason: 'truncated', stderr: 'pg_dump: fatal\n' });
  });

  it.each([
    { name: 'unknown stream type', header: [4, 0, 0, 0, 0, 0, 0, 1] },
    { name: 'non-zero padding', header: [1, 0, 1, 0, 0, 0, 0, 1] },
    { name: 'raw TTY text', header: [...Buffer.from('PGDMP\x01\x0e\x00')] },
  ])('fails on a frame header that is not Docker\'s: $name', async ({ header }) => {
    const err = await failure([Buffer.concat([frame(1, 'x'), Buffer.from(header), Buffer.from('y')])]);
    expect(err.code).toBe('BACKUP_FAILED');
    expect(err.data.reason).toBe('bad-header');
  });

  it('fails with the daemon\'s message on a systemerr frame', async () => {
    const err = await failure([Buffer.concat([frame(1, 'partial'), frame(3, 'container stopped')])]);
    expect(err.code).toBe('BACKUP_FAILED');
    expect(err.data).toMatchObject({ reason: 'daemon-error', message: 'container stopped' });
  });
});
