import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type Header } from 'tar-stream';
import { AgentError, errorMessage } from '../../core/errors.js';

/** Why an archive was refused; found in `AgentError.data.reason`. */
export type TarSafetyReason =
  | 'invalid-name'
  | 'absolute-path'
  | 'parent-segment'
  | 'outside-root'
  | 'path-escapes-root'
  | 'unsupported-type'
  | 'invalid-link'
  | 'symlink-absolute'
  | 'symlink-escapes-root'
  | 'hardlink-outside-root'
  | 'invalid-archive'
  | 'ambiguous-name';

export interface TarCheckResult {
  /** Entries seen (pax and GNU long-name headers are folded into their entry by tar-stream). */
  entries: number;
  /** Sum of the entries' body sizes: the content, not the archive's length. */
  bytes: number;
}

// pax/gnu extension headers never reach 'entry': tar-stream applies them to the next header
const ALLOWED_TYPES = new Set(['file', 'directory', 'symlink', 'link']);
const PAX_MAX_BYTES = 1024 * 1024;
// the same bound Linux applies to symlink resolution (MAXSYMLINKS)
const MAX_LINK_HOPS = 40;

type Problem = { reason: TarSafetyReason; detail?: Record<string, unknown> };

function nameProblem(name: string, root: string): TarSafetyReason | undefined {
  if (name === '' || name.includes('\0')) return 'invalid-name';
  if (name.startsWith('/')) return 'absolute-path';
  const segments = name.split('/');
  if (segments.includes('..')) return 'parent-segment';
  if (segments[0] !== root) return 'outside-root';
  // '' and '.' segments are harmless to most extractors but not to all: refuse the ambiguity
  if (segments.some((s) => s === '' || s === '.')) return 'invalid-name';
  return undefined;
}

function isValidRoot(root: string): boolean {
  return root !== '' && root !== '.' && root !== '..' && !root.includes('/') && !root.includes('\0');
}

function stripTrailingSlashes(name: string): string {
  let end = name.length;
  while (end > 1 && name[end - 1] === '/') end--;
  return name.slice(0, end);
}

/**
 * Whether a tar entry name is relative, free of `..` (and of empty or `.` segments), and equal to
 * `root` or below `root/`. A trailing slash, as directory entries carry, is accepted.
 */
export function isSafeEntryName(name: string, root: string): boolean {
  return isValidRoot(root) && nameProblem(stripTrailingSlashes(name), root) === undefined;
}

/**
 * Walks `segments` from the top of the archive the way the kernel would after extraction,
 * following the symlinks the archive has created so far (the last segment only if `followLast`).
 * Returns the physical path, or undefined when the walk leaves `root`, meets an absolute link
 * or loops. Refusing a walk that leaves root even transiently (`data/a -> ../data/b`) is stricter
 * than needed, but the directory above the volume is not ours to reason about.
 */
function resolveInRoot(links: Map<string, string>, root: string, segments: string[], followLast: boolean): string[] | undefined {
  const out: string[] = [];
  const todo = [...segments].reverse();
  let hops = 0;
  while (todo.length > 0) {
    const seg = todo.pop()!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length <= 1) return undefined;
      out.pop();
      continue;
    }
    if (out.length === 0 && seg !== root) return undefined;
    const target = links.get([...out, seg].join('/'));
    if (target !== undefined && (todo.length > 0 || followLast)) {
      if (++hops > MAX_LINK_HOPS || target.startsWith('/')) return undefined;
      todo.push(...target.split('/').reverse());
      continue;
    }
    out.push(seg);
  }
  return out.length > 0 ? out : undefined;
}

/** Checks one entry and records the symlinks it creates or replaces in `links`. */
function checkEntry(header: Header, root: string, links: Map<string, string>): Problem | undefined {
  // typed as a closed union, but tar-stream reports unknown typeflags (GNU sparse...) as null
  const type: string | null = header.type;
  if (type === null || !ALLOWED_TYPES.has(type)) return { reason: 'unsupported-type', detail: { type } };
  const name = stripTrailingSlashes(header.name);
  const reason = nameProblem(name, root);
  if (reason) return { reason };

  const segments = name.split('/');
  // an earlier symlink in the archive can redirect a later entry's parent directory
  const parent = segments.length === 1 ? [] : resolveInRoot(links, root, segments.slice(0, -1), true);
  if (!parent) return { reason: 'path-escapes-root' };
  const location = [...parent, segments[segments.length - 1]!].join('/');
  // typed as string, but null when the header has no link name
  const linkname: string = header.linkname ?? '';

  if (type === 'symlink') {
    if (linkname === '' || linkname.includes('\0')) return { reason: 'invalid-link', detail: { linkname } };
    if (linkname.startsWith('/')) return { reason: 'symlink-absolute', detail: { linkname } };
    if (!resolveInRoot(links, root, [...parent, ...linkname.split('/')], true)) {
      return { reason: 'symlink-escapes-root', detail: { linkname } };
    }
    links.set(location, linkname);
    return undefined;
  }
  // extracting over a symlink replaces it (Docker removes the old path first)
  links.delete(location);

  if (type === 'link') {
    // a hard link's target is an archive path, not relative to the link's directory
    const target = stripTrailingSlashes(linkname);
    if (nameProblem(target, root) || !resolveInRoot(links, root, target.split('/'), false)) {
      return { reason: 'hardlink-outside-root', detail: { linkname } };
    }
  }
  return undefined;
}

// A symlink that resolved inside root when it was created can be redirected by links created
// after it (`a -> x/..`, then `x -> .`): re-resolve all of them once the archive is complete.
function recheckLinks(links: Map<string, string>, root: string): Problem & { entry: string } | undefined {
  for (const [location, linkname] of links) {
    const parent = location.split('/').slice(0, -1);
    if (!resolveInRoot(links, root, [...parent, ...linkname.split('/')], true)) {
      return { entry: location, reason: 'symlink-escapes-root', detail: { linkname } };
    }
  }
  return undefined;
}

function refusal(entry: string, problem: Problem): AgentError {
  return new AgentError('BACKUP_FAILED', `unsafe tar entry ${JSON.stringify(entry)}: ${problem.reason}`, {
    data: { entry, reason: problem.reason, ...problem.detail },
  });
}

/**
 * Reads a whole tar stream (draining entry bodies) and resolves when every entry would extract
 * inside `root`, the archive's single top-level directory (Docker's GET archive of
 * `/var/lib/postgresql/data` puts everything under `data`). Restores extract backups into volumes,
 * so an archive crafted or corrupted to write elsewhere must be refused before extraction.
 *
 * Rejects with `BACKUP_FAILED`, `data: { entry, reason, ... }` (see {@link TarSafetyReason}) on:
 * absolute names, `..` segments, names outside `root`, entries under a symlink that leads outside,
 * absolute or escaping symlinks (resolved from the link's directory, following the archive's
 * other symlinks), hard links to targets outside `root`, and device, fifo or unknown entry types.
 * A stream that is not a valid tar (or ends early) rejects with reason `invalid-archive` and
 * `entry` undefined. On any failure `source` is destroyed.
 */
/**
 * Reads the raw 512-byte headers as they pass: an entry named both by a pax header (`path`,
 * `linkpath`) and by a GNU long-name header (`L`, `K`) is refused, since tar implementations
 * disagree on which one wins (the checker could read one name and the extractor the other).
 */
function extensionScanner(): Transform {
  let buffered = Buffer.alloc(0);
  let skip = 0;
  let pax = false;
  let globalPax = false;
  let gnu = false;
  let paxSize: number | undefined;
  const refuse = (cb: (err: Error) => void, message: string, reason: TarSafetyReason) => cb(new AgentError('BACKUP_FAILED', `archive refused: ${message}`, { data: { entry: undefined, reason } }));
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const data = buffered.length > 0 ? Buffer.concat([buffered, chunk]) : chunk;
      let at = 0;
      while (true) {
        if (skip > 0) {
          const n = Math.min(skip, data.length - at);
          skip -= n;
          at += n;
          if (skip > 0) break;
        }
        if (data.length - at < 512) break;
        const header = data.subarray(at, at + 512);
        if (header.every((b) => b === 0)) {
          at += 512;
          continue;
        }
        const type = String.fromCharCode(header[156] ?? 48);
        const size = headerSize(header);
        if (type === 'x' || type === 'g') {
          // the pax records are in the body (small): wait for all of it, then read path, linkpath and size
          if (size > PAX_MAX_BYTES) return refuse(cb, `a pax header of ${size} B`, 'invalid-archive');
          if (data.length - at - 512 < size) break;
          const records = data.subarray(at + 512, at + 512 + size).toString('utf8');
          const named = /(^|\n)\d+ (path|linkpath)=/.test(records);
          if (type === 'g') globalPax ||= named;
          else {
            pax ||= named;
            const s = /(^|\n)\d+ size=(\d+)\n/.exec(records);
            if (s) paxSize = Number(s[2]);
          }
        } else if (type === 'L' || type === 'K') gnu = true;
        else {
          const ambiguous = (pax || globalPax) && gnu;
          const body = paxSize ?? size;
          pax = false;
          gnu = false;
          paxSize = undefined;
          if (ambiguous) return refuse(cb, 'an entry is named by both a pax header and a GNU long-name header, which tar implementations read differently', 'ambiguous-name');
          at += 512;
          skip = Math.ceil(body / 512) * 512;
          continue;
        }
        at += 512;
        skip = Math.ceil(size / 512) * 512;
      }
      buffered = Buffer.from(data.subarray(at));
      cb(null, chunk);
    },
  });
}

/** A header's size field: octal, or GNU's base-256 (the high bit of its first byte set) for large files. */
function headerSize(header: Buffer): number {
  const field = header.subarray(124, 136);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0);
    return n;
  }
  return parseInt(field.toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8) || 0;
}

export async function checkTarEntries(source: Readable, opts: { root: string }): Promise<TarCheckResult> {
  const { root } = opts;
  if (!isValidRoot(root)) {
    source.destroy();
    throw new AgentError('INTERNAL', `invalid archive root: ${JSON.stringify(root)}`, { data: { root } });
  }
  const links = new Map<string, string>();
  let entries = 0;
  let bytes = 0;
  const tar = extract();
  tar.on('entry', (header, body, next) => {
    // the error, if any, is reported by the extract stream; an unhandled one here would throw
    body.on('error', () => undefined);
    const problem = checkEntry(header, root, links);
    // next(err) destroys the extract stream, so pipeline rejects with this error
    if (problem) return next(refusal(header.name, problem));
    entries++;
    // streamx types chunks as unknown; tar-stream's entry bodies are always Buffers
    body.on('data', (chunk) => {
      bytes += (chunk as Buffer).length;
    });
    body.on('end', () => next());
    body.resume();
  });
  try {
    await pipeline(source, extensionScanner(), tar);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('BACKUP_FAILED', `invalid tar archive: ${errorMessage(err)}`, {
      cause: err,
      data: { entry: undefined, reason: 'invalid-archive' satisfies TarSafetyReason },
    });
  }
  const late = recheckLinks(links, root);
  if (late) throw refusal(late.entry, late);
  return { entries, bytes };
}
