import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { AgentError } from '../../core/errors.js';

type Sink = ReturnType<ReturnType<typeof pack>['entry']>;

// Copies body into the entry with backpressure, refusing as soon as it is longer than declared:
// tar-stream only notices a size mismatch at the end, after the extra bytes corrupted the archive.
async function copyExactly(body: Readable, sink: Sink, name: string, size: number): Promise<void> {
  let written = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    written += buf.length;
    if (written > size) throw sizeMismatch(name, size, written);
    // streamx emits 'error' like Node streams, so once() rejects if the sink fails while we wait
    if (!sink.write(buf)) await once(sink, 'drain');
  }
  if (written !== size) throw sizeMismatch(name, size, written);
  // streamx's typings require an argument; undefined means "no last chunk"
  sink.end(undefined);
}

function sizeMismatch(name: string, expected: number, actual: number): AgentError {
  return new AgentError('BACKUP_FAILED', `tar entry ${JSON.stringify(name)}: body is not ${expected} bytes`, {
    data: { reason: 'size-mismatch', entry: name, expected, actual: actual > expected ? `> ${expected}` : actual },
  });
}

/**
 * Wraps one stream of known size into a tar archive holding a single file entry, streaming:
 * the body is read only as fast as the archive is consumed. Used to copy a large file (a database
 * dump) into a container through Docker's PUT archive API without holding it in memory.
 *
 * The archive errors with `BACKUP_FAILED` (`data.reason: 'size-mismatch'`) if the body is not
 * exactly `size` bytes, or with the body's own error; destroying the returned stream destroys
 * `body`.
 */
export function tarSingleFile(name: string, size: number, body: Readable, mode = 0o600): Readable {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new AgentError('INTERNAL', `invalid tar entry size: ${String(size)}`, { data: { entry: name, size } });
  }
  const archive = pack();
  const sink = archive.entry({ name, size, mode, type: 'file' }, (err) => {
    if (!err) archive.finalize();
  });
  // the failure is reported through the archive; an 'error' nobody listens to would throw
  sink.on('error', () => undefined);
  // a failing sink destroys the pack (tar-stream's Sink._predestroy), which fails the output
  copyExactly(body, sink, name, size).catch((err: unknown) => {
    sink.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  // streamx is not a Node Readable: wrap it, in byte mode (Readable.from defaults to objects)
  const out = Readable.from(archive, { objectMode: false });
  out.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return out;
}
