import { formatBytes } from '../core/bytes.js';
import type { ProgressListener } from '../ports/backup-repository.js';

/**
 * Bytes and rate of a long operation, redrawn in place on a terminal; nothing at all when
 * stderr is not a terminal (logs get one line per finished artifact instead).
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): ProgressListener | undefined {
  if (!stream.isTTY) return undefined;
  const started = new Map<string, number>();
  return ({ service, file, bytes }) => {
    const key = `${service}/${file}`;
    if (!started.has(key)) started.set(key, now());
    const seconds = Math.max(0.001, (now() - (started.get(key) as number)) / 1000);
    stream.write(`\r\x1b[K${service}  ${file}  ${formatBytes(bytes)}  ${formatBytes(bytes / seconds)}/s`);
  };
}

export { formatBytes };
