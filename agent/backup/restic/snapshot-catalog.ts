import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../../core/errors.js';
import type { BackupRef } from '../../ports/backup-repository.js';
import { writeFileAtomic } from '../../state/atomic-file.js';
import type { ResticCli, ResticOptions } from './restic-cli.js';
import { artifactTags, type ResticSnapshot } from './restic-format.js';

const LIST_TTL_MS = 10_000;

/**
 * Every snapshot of the agent. restic needs a run for this, about a second (its key derivation
 * and a container), so a local repository is listed from its `snapshots/` directory (one file
 * per snapshot, named by its id) and an index in the state directory of what each snapshot is
 * (its tags, written when this agent made it or listed it): restic runs only when the directory
 * holds a snapshot the index does not know. In S3 the listing is reused for a few seconds (the
 * steps of one backup), until this process writes again.
 */
export function createSnapshotCatalog(cli: ResticCli, options: ResticOptions & { manifestCache: string }, log: Logger) {
  const indexFile = join(options.manifestCache, 'snapshots.json');
  let index: { snapshots: Map<string, ResticSnapshot>; opened?: string } | undefined;
  let listed: ResticSnapshot[] | undefined;
  let listedAt = 0;
  const loadIndex = async (): Promise<NonNullable<typeof index>> => {
    if (!index) {
      let raw: { snapshots?: ResticSnapshot[]; opened?: string } = {};
      const text = await readFile(indexFile, 'utf8').catch(() => undefined);
      try {
        if (text) raw = JSON.parse(text) as typeof raw;
      } catch {
        log.warn({ file: indexFile }, 'The restic snapshot index is unreadable: listing the repository again');
      }
      const snaps = Array.isArray(raw.snapshots) ? raw.snapshots.filter((x) => typeof x?.id === 'string') : [];
      index = { snapshots: new Map(snaps.map((x) => [x.id, x])), ...(typeof raw.opened === 'string' ? { opened: raw.opened } : {}) };
    }
    return index;
  };
  const saveIndex = async (snaps: Iterable<ResticSnapshot>, opened = index?.opened): Promise<void> => {
    index = { snapshots: new Map([...snaps].map((x) => [x.id, x])), ...(opened ? { opened } : {}) };
    // Written by readers too (`status`, `backup list`), atomically: an entry is a fact about a
    // snapshot, which never changes, and one lost to a concurrent write costs a restic run.
    try {
      await mkdir(options.manifestCache, { recursive: true, mode: 0o700 });
      await writeFileAtomic(indexFile, `${JSON.stringify({ opened: index.opened, snapshots: [...index.snapshots.values()] })}\n`, 0o600);
    } catch (err) {
      log.debug({ file: indexFile, err: errorMessage(err) }, 'Cannot write the restic snapshot index');
    }
  };
  /** The ids of the local repository's snapshots, from its directory; undefined in S3. */
  const snapshotFiles = async (): Promise<string[] | undefined> => {
    if (options.s3) return undefined;
    const names = await readdir(join(options.dir, 'snapshots')).catch(() => undefined);
    return names?.filter((n) => /^[0-9a-f]{64}$/.test(n));
  };
  const snapshots = async (tags: string[], fresh = false): Promise<ResticSnapshot[]> => {
    const only = (all: ResticSnapshot[]) => all.filter((s) => ['gitops-agent', ...tags].every((t) => (s.tags ?? []).includes(t)));
    const files = await snapshotFiles();
    if (!fresh) {
      const known = files && (await loadIndex()).snapshots;
      if (known && files.every((id) => known.has(id))) return only(files.map((id) => known.get(id) as ResticSnapshot));
      if (!files && listed && Date.now() - listedAt <= LIST_TTL_MS) return only(listed);
    }
    listedAt = Date.now();
    // every snapshot, the agent's or not: the index must know each file of the directory
    const r = await cli.run(['snapshots', '--json', '--no-lock']);
    if (r.code !== 0) throw cli.failure(`cannot open the restic repository ${cli.where}`, r);
    listed = (JSON.parse(r.stdout || '[]') as ResticSnapshot[] | null) ?? [];
    if (files) await saveIndex(listed);
    return only(listed);
  };
  /**
   * What opened the local repository the last time restic did: its key files and the password.
   * The same key files and the same password open it again, so `check` needs no restic run. A
   * SHA-256 of the password, a random 32 bytes, tells nothing of it.
   */
  const openedBy = async (): Promise<string | undefined> => {
    if (options.s3) return undefined;
    const keys = await readdir(join(options.dir, 'keys')).catch(() => undefined);
    const password = await readFile(options.passwordFile).catch(() => undefined);
    if (!keys || !password) return undefined;
    return createHash('sha256').update(password).update('\0').update(keys.sort().join(',')).digest('hex');
  };
  const changed = () => (listed = undefined);
  /** A snapshot this process just made, added to the index so the next listing needs no restic run. */
  const made = async (shortId: string, b: BackupRef, file: string, path: string): Promise<void> => {
    const files = await snapshotFiles();
    if (!files) return;
    const known = (await loadIndex()).snapshots;
    // the new file with that prefix; if two share it (8 hex digits), the next listing asks restic
    const candidates = files.filter((f) => f.startsWith(shortId) && !known.has(f));
    const id = candidates.length === 1 ? candidates[0] : undefined;
    if (!id) return;
    known.set(id, { id, short_id: id.slice(0, 8), time: new Date().toISOString(), hostname: options.host, paths: [path], tags: artifactTags(b, file) });
    const present = new Set(files);
    await saveIndex([...known.values()].filter((x) => present.has(x.id)));
  };

  return {
    snapshots,
    changed,
    made,
    /** The password and key files opened the repository last time: no restic run needed to know they still do. */
    openedBefore: async (): Promise<boolean> => {
      const token = await openedBy();
      return !!token && (await loadIndex()).opened === token;
    },
    /** Records what just opened the repository (after a listing by restic). */
    markOpened: async (): Promise<void> => {
      const token = await openedBy();
      if (token) await saveIndex((await loadIndex()).snapshots.values(), token);
    },
  };
}
