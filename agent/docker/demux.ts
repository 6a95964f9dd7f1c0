import { Transform, type TransformCallback } from 'node:stream';
import { AgentError } from '../core/errors.js';

const HEADER_BYTES = 8;
const DEFAULT_STDERR_LIMIT = 16 * 1024;
// Docker's stdcopy: 0 stdin (written to stdout by Docker's own reader), 1 stdout, 2 stderr,
// 3 "systemerr", an error message from the daemon that ends the stream.
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const SYSTEMERR = 3;

export interface DockerDemuxOptions {
  /** How many trailing bytes of stderr to keep; default 16 KiB. */
  stderrLimitBytes?: number;
}

export interface DockerDemux {
  /** Raw multiplexed bytes in, stdout payload bytes out. */
  stdout: Transform;
  /** The last `stderrLimitBytes` of stderr seen so far, decoded as UTF-8. */
  stderrText(): string;
}

/** Keeps the last `limit` bytes written, copying so that it never pins a large incoming chunk. */
class TailBuffer {
  private buf = Buffer.alloc(0);
  private seen = 0;
  constructor(private readonly limit: number) {}

  append(chunk: Buffer): void {
    this.seen += chunk.length;
    if (this.limit === 0 || chunk.length === 0) return;
    const tail = chunk.length > this.limit ? chunk.subarray(chunk.length - this.limit) : chunk;
    const joined = Buffer.concat([this.buf, tail]);
    this.buf = joined.length > this.limit ? Buffer.from(joined.subarray(joined.length - this.limit)) : joined;
  }

  text(): string {
    let start = 0;
    // after trimming, the first bytes may be the continuation of a cut multi-byte character
    if (this.seen > this.limit) while (start < this.buf.length && start < 3 && (this.buf[start]! & 0xc0) === 0x80) start++;
    return this.buf.subarray(start).toString('utf8');
  }
}

class DockerDemuxTransform extends Transform {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private stream = -1;
  private remaining = 0;
  private readonly stderr: TailBuffer;
  private readonly systemErr: TailBuffer;

  constructor(stderrLimit: number) {
    super();
    this.stderr = new TailBuffer(stderrLimit);
    this.systemErr = new TailBuffer(DEFAULT_STDERR_LIMIT);
  }

  stderrText(): string {
    return this.stderr.text();
  }

  // Pushes subarrays of `chunk` (no copies) and calls back once: Transform then holds the next
  // write until the readable side drains, which is the whole backpressure story.
  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.stream === -1) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + take);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < HEADER_BYTES) break;
        const err = this.startFrame();
        if (err) return callback(err);
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - pos);
      this.payload(chunk.subarray(pos, pos + take));
      pos += take;
      this.remaining -= take;
      if (this.remaining === 0) {
        const err = this.endFrame();
        if (err) return callback(err);
      }
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.headerFill === 0 && this.stream === -1) return callback();
    callback(
      new AgentError('BACKUP_FAILED', 'multiplexed stream ended in the middle of a frame', {
        data: {
          reason: 'truncated',
          headerBytes: this.headerFill,
          missingPayloadBytes: this.remaining,
          stderr: this.stderrText(),
        },
      }),
    );
  }

  private startFrame(): AgentError | undefined {
    const type = this.header[0]!;
    // bytes 1-3 are always zero in a real frame: a non-zero value means this is not a
    // multiplexed stream (a TTY exec, for one) and the "lengths" would be garbage
    if (type > SYSTEMERR || this.header[1] !== 0 || this.header[2] !== 0 || this.header[3] !== 0) {
      return new AgentError('BACKUP_FAILED', 'not a Docker multiplexed stream: invalid frame header', {
        data: { reason: 'bad-header', header: this.header.toString('hex') },
      });
    }
    this.headerFill = 0;
    this.stream = type;
    this.remaining = this.header.readUInt32BE(4);
    return this.remaining === 0 ? this.endFrame() : undefined;
  }

  private payload(bytes: Buffer): void {
    if (this.stream === STDOUT || this.stream === STDIN) this.push(bytes);
    else if (this.stream === STDERR) this.stderr.append(bytes);
    else this.systemErr.append(bytes);
  }

  private endFrame(): AgentError | undefined {
    const type = this.stream;
    this.stream = -1;
    if (type !== SYSTEMERR) return undefined;
    const message = this.systemErr.text();
    return new AgentError('BACKUP_FAILED', `error from the Docker daemon in the stream: ${message}`, {
      data: { reason: 'daemon-error', message, stderr: this.stderrText() },
    });
  }
}

/**
 * A backpressure-aware parser of Docker's multiplexed attach/exec stream: `stdout` is a Transform
 * that emits only the stdout payloads, while stderr is kept in a bounded tail buffer.
 *
 * Unlike dockerode's `modem.demuxStream`, which writes without regard for the destination's
 * backpressure, this holds at most one incoming chunk (plus up to 7 header bytes), so a 1 GiB dump
 * streamed to a slow store does not accumulate in memory. A stream that ends mid-frame, a frame
 * header that is not Docker's, or a daemon error frame make the Transform fail with
 * `BACKUP_FAILED` (`data.reason`: `truncated`, `bad-header`, `daemon-error`).
 */
export function createDockerDemux(opts: DockerDemuxOptions = {}): DockerDemux {
  const limit = opts.stderrLimitBytes ?? DEFAULT_STDERR_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new AgentError('INTERNAL', `invalid stderrLimitBytes: ${String(limit)}`, { data: { stderrLimitBytes: limit } });
  }
  const stdout = new DockerDemuxTransform(limit);
  return { stdout, stderrText: () => stdout.stderrText() };
}
