import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AgentError } from '../../core/errors.js';

/** A pass-through that hashes and counts what flows through it. */
export type HashingStream = Transform & {
  /** Hex digest of every byte that passed; valid once the stream has finished ('finish' or 'end'). */
  digest(): string;
  /** Bytes that passed so far. */
  bytes(): number;
};

class HashingTransform extends Transform {
  private readonly hash: Hash;
  private count = 0;
  private hex: string | undefined;

  constructor(private readonly algorithm: string) {
    super();
    try {
      this.hash = createHash(algorithm);
    } catch (err) {
      throw new AgentError('INTERNAL', `unsupported hash algorithm: ${algorithm}`, { cause: err, data: { algorithm } });
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.count += chunk.length;
    callback(null, chunk);
  }

  // _flush runs before both 'finish' and 'end', so the digest is ready for listeners of either
  override _flush(callback: TransformCallback): void {
    this.hex = this.hash.digest('hex');
    callback();
  }

  digest(): string {
    if (this.hex === undefined) {
      // a digest of a prefix would be silently wrong in a manifest, so refuse instead
      throw new AgentError('INTERNAL', 'digest() called before the hashing stream finished', {
        data: { algorithm: this.algorithm, bytes: this.count },
      });
    }
    return this.hex;
  }

  bytes(): number {
    return this.count;
  }
}

/**
 * A pass-through Transform that hashes (default sha256) and counts the bytes flowing through it,
 * to record a backup's size and checksum while it streams to the store, without a second read.
 * `digest()` throws `INTERNAL` if called before the stream finished.
 */
export function createHashingStream(algorithm = 'sha256'): HashingStream {
  return new HashingTransform(algorithm);
}
