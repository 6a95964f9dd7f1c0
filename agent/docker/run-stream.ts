import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { Readable } from 'node:stream';
import { createDockerDemux } from './demux.js';
import type { StreamRun, StreamRunRequest } from '../ports/docker.js';

/**
 * A throwaway container driven like a child process: attached before it starts (no output is
 * lost), its files written before it starts, stdin piped in and closed at its end, stdout
 * demultiplexed with backpressure. The container is removed once it has exited; the signal
 * kills it.
 */
export async function runStreamed(docker: Docker, req: StreamRunRequest, signal?: AbortSignal): Promise<StreamRun> {
  const c = await docker.createContainer({
    Image: req.image,
    Cmd: req.argv,
    ...(req.entrypoint ? { Entrypoint: req.entrypoint } : {}),
    ...(req.user ? { User: req.user } : {}),
    Labels: req.labels,
    ...(req.hostname ? { Hostname: req.hostname } : {}),
    Env: req.env ?? [],
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: !!req.stdin,
    OpenStdin: !!req.stdin,
    StdinOnce: !!req.stdin,
    HostConfig: { NetworkMode: req.networkMode ?? 'none', Mounts: req.mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })) },
  });
  const remove = () => c.remove({ force: true }).catch(() => undefined);
  let stream: Duplex;
  try {
    if (req.files && req.files.length > 0) {
      const archive = pack();
      for (const f of req.files) archive.entry({ name: f.path.replace(/^\/+/, ''), mode: f.mode, mtime: new Date(0), type: 'file' }, f.content);
      archive.finalize();
      await c.putArchive(Readable.from(archive, { objectMode: false }) as unknown as NodeJS.ReadableStream, { path: '/' });
    }
    stream = (await c.attach({ stream: true, stdin: !!req.stdin, stdout: true, stderr: true, hijack: !!req.stdin })) as unknown as Duplex;
    await c.start();
  } catch (err) {
    await remove();
    throw err;
  }
  const demux = createDockerDemux({});
  const stdout = new PassThrough();
  stream.on('error', (err) => stdout.destroy(err));
  stream.pipe(demux.stdout).pipe(stdout);
  demux.stdout.on('error', (err) => stdout.destroy(err));
  if (req.stdin) {
    const input = req.stdin;
    input.on('error', () => stream.end());
    // Only our half ends: the output keeps flowing until the process exits.
    input.pipe(stream, { end: false });
    input.on('end', () => stream.end());
    // A process that exits before reading all of its input: the producer is stopped too, and
    // the process's own message (not a broken pipe) is what the caller reads.
    stream.once('close', () => {
      input.unpipe(stream);
      if (!input.readableEnded) input.destroy();
    });
  }
  const kill = () => void c.kill().catch(() => undefined);
  signal?.addEventListener('abort', kill, { once: true });
  let waited: Promise<number> | undefined;
  return {
    stdout,
    stderr: () => demux.stderrText(),
    kill: async () => {
      await c.kill().catch(() => undefined);
    },
    wait() {
      waited ??= (async () => {
        try {
          const r = (await c.wait()) as { StatusCode: number };
          return r.StatusCode;
        } finally {
          signal?.removeEventListener('abort', kill);
          await remove();
        }
      })();
      return waited;
    },
  };
}
