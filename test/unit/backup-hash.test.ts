import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createHashingStream } from '../../agent/backup/streams/hash.js';
import { AgentError } from '../../agent/core/errors.js';

const big = randomBytes(3 * 1024 * 1024 + 17);

function chunked(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

describe('createHashingStream', () => {
  it.each([
    { name: 'empty', chunks: [] as Buffer[], algorithm: undefined },
    { name: 'abc', chunks: [Buffer.from('abc')], algorithm: undefined },
    { name: 'abc split', chunks: [Buffer.from('a'), Buffer.from(''), Buffer.from('bc')], algorithm: 'sha256' },
    { name: '3 MB in 64 KiB chunks', chunks: chunked(big, 65536), algorithm: undefined },
    { name: '3 MB in odd chunks', chunks: chunked(big, 1000), algorithm: 'sha512' },
    { name: 'abc with sha1', chunks: [Buffer.from('abc')], algorithm: 'sha1' },
  ])('passes through, counts and hashes $name', async ({ chunks, algorithm }) => {
    const h = algorithm === undefined ? createHashingStream() : createHashingStream(algorithm);
    const out: Buffer[] = [];
    await pipeline(Readable.from(chunks), h, async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) out.push(c);
    });
    const all = Buffer.concat(chunks);
    expect(Buffer.concat(out).equals(all)).toBe(true);
    expect(h.bytes()).toBe(all.length);
    expect(h.digest()).toBe(createHash(algorithm ?? 'sha256').update(all).digest('hex'));
  });

  it.each(['finish', 'end'] as const)("has the digest when '%s' is emitted", async (event) => {
    const h = createHashingStream();
    const seen = once(h, event).then(() => h.digest());
    h.resume();
    h.end('abc');
    expect(await seen).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('refuses digest() before the stream finished', () => {
    const h = createHashingStream();
    h.write('abc');
    expect(() => h.digest()).toThrow(AgentError);
    expect(h.bytes()).toBe(3);
    h.destroy();
  });

  it('refuses an unknown algorithm with a typed error', () => {
    expect(() => createHashingStream('no-such-hash')).toThrow(expect.objectContaining({ code: 'INTERNAL', data: { algorithm: 'no-such-hash' } }));
  });
});
