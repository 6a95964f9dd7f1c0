import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { AgentError, errorMessage } from '../../core/errors.js';

/**
 * A restic image made on the host's engine from the host's own restic binary (Debian's
 * `restic` package): /restic, the shared libraries `ldd` lists for it (Debian's restic links
 * glibc and nothing else) and an empty /tmp (1777). No shell, no registry: it is pinned by its
 * image id, a digest of its content (`sha256:...`), which the engine runs as it is. Built again
 * only when the binary changed (its sha256 is the image's comment).
 */
export const DEFAULT_RESTIC_BINARY = '/usr/bin/restic';

export interface LocalResticImage {
  /** `gitops-agent/restic:<version>` */
  ref: string;
  /** The image id, `sha256:...`: what `backup.restic.image` names. */
  id: string;
  version: string;
}

/** The version a restic binary reports (`restic version`). */
export function resticVersion(binary: string): string {
  if (!existsSync(binary)) throw new AgentError('CONFIG_INVALID', `${binary} not found: install restic (Debian: apt-get install restic) or name another binary`);
  let out: string;
  try {
    out = execFileSync(binary, ['version'], { encoding: 'utf8' });
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${binary} version failed: ${errorMessage(err)}`, { cause: err });
  }
  const version = /restic (\d+\.\d+\.\d+)/.exec(out)?.[1];
  if (!version) throw new AgentError('CONFIG_INVALID', `${binary} does not say which restic it is: ${out.trim().slice(0, 200)}`);
  return version;
}

/** Absolute paths of the shared libraries (and the loader) `ldd` lists for `bin`. */
function sharedLibraries(bin: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [bin], { encoding: 'utf8' });
  } catch (err) {
    // a static binary: "not a dynamic executable", exit 1
    if (/not a dynamic executable/.test(String((err as { stderr?: unknown }).stderr ?? '')) || /not a dynamic executable/.test(String((err as { stdout?: unknown }).stdout ?? ''))) return [];
    throw new AgentError('CONFIG_INVALID', `ldd ${bin} failed: ${errorMessage(err)}`, { cause: err });
  }
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (m?.[1]) libs.add(m[1]);
    else if (/=>\s*not found/.test(line)) throw new AgentError('CONFIG_INVALID', `ldd ${bin}: ${line.trim()}`);
  }
  return [...libs].sort();
}

/** The image's root filesystem as a tar stream: regular files (symlinks resolved), owned by root, with fixed times: the same image id for the same binary. */
export function resticRootfs(binary: string): Readable {
  const mtime = statSync(binary).mtime;
  const files = [{ name: 'restic', from: binary }, ...sharedLibraries(binary).map((lib) => ({ name: lib.slice(1), from: lib }))];
  const dirs = new Set<string>();
  for (const f of files) {
    for (let d = posix.dirname(f.name); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  }
  const tar = pack();
  const owner = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime };
  tar.entry({ name: 'tmp', type: 'directory', mode: 0o1777, ...owner });
  for (const d of [...dirs].sort()) tar.entry({ name: d, type: 'directory', mode: 0o755, ...owner });
  for (const f of files) {
    const content = readFileSync(f.from); // follows symlinks (libc.so.6, the loader)
    tar.entry({ name: f.name, type: 'file', mode: 0o755, size: content.length, ...owner }, content);
  }
  tar.finalize();
  // streamx is not a Node Readable: wrapped, in byte mode
  return Readable.from(tar, { objectMode: false });
}

/** Imports the image as `ref` (default `gitops-agent/restic:<version>`) into `docker` and returns its id. */
export async function buildLocalResticImage(docker: Docker, opts: { binary?: string; ref?: string } = {}): Promise<LocalResticImage> {
  const binary = opts.binary ?? DEFAULT_RESTIC_BINARY;
  const version = resticVersion(binary);
  const ref = opts.ref ?? `gitops-agent/restic:${version}`;
  const colon = ref.lastIndexOf(':');
  const [repo, tag] = colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  // The image records which binary it holds: made again only when that binary changed (the
  // engine gives every import a new id, its creation time being part of it).
  const comment = `restic ${version}, sha256 ${createHash('sha256').update(readFileSync(binary)).digest('hex')} of ${binary}`;
  const existing = await docker
    .getImage(`${repo}:${tag}`)
    .inspect()
    .catch(() => undefined);
  if (existing?.Comment === comment) return { ref: `${repo}:${tag}`, id: existing.Id, version };
  const stream = await docker.importImage(resticRootfs(binary), { repo, tag, message: comment, changes: ['ENTRYPOINT ["/restic"]'] });
  const out = await new Promise<string>((resolve, reject) => {
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    stream.on('error', reject);
    stream.on('end', () => resolve(text));
  });
  const failed = /"error(?:Detail)?":\s*(?:\{"message":)?"([^"]+)"/.exec(out)?.[1];
  if (failed) throw new AgentError('DOCKER_ERROR', `import of ${ref} failed: ${failed}`);
  const id = (await docker.getImage(`${repo}:${tag}`).inspect()).Id;
  return { ref: `${repo}:${tag}`, id, version };
}
