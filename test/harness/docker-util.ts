/**
 * Small dockerode helpers for building offline images: import a rootfs, build from a local
 * base (legacy builder, no pull), push to the test registry and read the pushed digest.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';

/** One JSON message of the engine's progress streams (pull, push, build, import). */
export interface ProgressEvent {
  status?: string;
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string; Size?: number };
}

/**
 * Read a progress stream to the end. The engine reports failures inside the stream with an
 * HTTP 200, so an `error` event must be turned into a rejection here.
 */
export function drain(stream: NodeJS.ReadableStream, what: string): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    const events: ProgressEvent[] = [];
    let buf = '';
    const take = (line: string): void => {
      if (line.trim() === '') return;
      try {
        events.push(JSON.parse(line) as ProgressEvent);
      } catch {
        events.push({ stream: line });
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        take(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    stream.on('error', reject);
    stream.on('end', () => {
      take(buf);
      const failed = events.find((e) => e.error !== undefined || e.errorDetail !== undefined);
      if (failed) {
        const log = events.map((e) => e.stream ?? e.status ?? '').join('').slice(-2000);
        reject(new Error(`${what} failed: ${failed.error ?? failed.errorDetail?.message}\n${log}`));
      } else resolve(events);
    });
  });
}

/** `docker import` of a directory, streamed through the `tar` CLI (keeps owners and modes). */
export async function importRootfs(docker: Docker, rootfs: string, ref: string): Promise<void> {
  const tar = spawn('tar', ['-C', rootfs, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const tarDone = new Promise<void>((resolve, reject) =>
    tar.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar of ${rootfs} failed (${code}): ${stderr}`)))),
  );
  const colon = ref.lastIndexOf(':');
  const stream = await docker.importImage(tar.stdout, { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) });
  await Promise.all([drain(stream, `import of ${ref}`), tarDone]);
}

/** A file of a build context: text, optionally with a mode (default 0644). */
export type ContextFile = string | { content: string; mode: number };

/**
 * Build `ref` from a Dockerfile and context files. The legacy builder with `pull: false`
 * never contacts a registry when the FROM image is local.
 */
export async function buildImage(docker: Docker, ref: string, files: Record<string, ContextFile>): Promise<string> {
  const ctx = mkdtempSync(join(tmpdir(), 'gadt-ctx-'));
  try {
    for (const [name, file] of Object.entries(files)) {
      const p = join(ctx, name);
      writeFileSync(p, typeof file === 'string' ? file : file.content);
      chmodSync(p, typeof file === 'string' ? 0o644 : file.mode);
    }
    const stream = await docker.buildImage({ context: ctx, src: Object.keys(files) }, { t: ref, rm: true, forcerm: true, pull: false, version: '1' });
    const events = await drain(stream, `build of ${ref}`);
    const id = events.find((e) => e.aux?.ID)?.aux?.ID;
    if (!id) throw new Error(`build of ${ref}: no image ID in the build output`);
    return id;
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** Push `repo:tag` and return the manifest digest the registry stored. */
export async function pushImage(docker: Docker, ref: string): Promise<string> {
  const colon = ref.lastIndexOf(':');
  // an X-Registry-Auth header is required even for an anonymous registry: send "{}"
  const stream = await docker.getImage(ref.slice(0, colon)).push({ tag: ref.slice(colon + 1), authconfig: {} });
  const events = await drain(stream, `push of ${ref}`);
  const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
  if (!digest?.startsWith('sha256:')) throw new Error(`push of ${ref}: no digest in the push output`);
  return digest;
}

/** Pull a reference (tag or digest) from a registry into the engine. */
export async function pullImage(docker: Docker, ref: string): Promise<void> {
  const stream = await docker.pull(ref, { authconfig: {} });
  await drain(stream, `pull of ${ref}`);
}
