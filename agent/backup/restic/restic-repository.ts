import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { AgentError, errorMessage } from '../../core/errors.js';
import { LABELS } from '../../core/labels.js';
import type { BackupManifest } from '../../model/backup.js';
import type { ArtifactCheck, BackupRef, BackupRepository, ProgressListener } from '../../ports/backup-repository.js';
import type { DockerPort } from '../../ports/docker.js';
import { writeFileAtomic } from '../../state/atomic-file.js';
import { clearVolume } from '../clear-volume.js';
import { createHashingStream } from '../streams/hash.js';
import { ResticCli, type ResticOptions } from './restic-cli.js';
import { createSnapshotCatalog } from './snapshot-catalog.js';
import { MANIFEST_ARTIFACT, artifactTags, parseTags, snapshotPath, stdinName, tagValue, type ResticSnapshot, type ResticSummary } from './restic-format.js';

/**
 * Backups in a restic repository: every artifact a snapshot (a volume read from a mount of
 * restic's own container, so unchanged files are skipped; a dump or a path's tar through
 * `--stdin`), tagged with stack, service, artifact, image, revision and reason. The manifest
 * is a snapshot of its own, made last: a backup exists once it is there.
 */
const PRUNE_EVERY_MS = 24 * 3600_000;

export function createResticRepository(docker: DockerPort, options: ResticOptions & { manifestCache: string }, log: Logger): BackupRepository {
  const cli = new ResticCli(docker, options, log);

  const backup = async (b: BackupRef, file: string, path: string, args: string[], extra: { mounts?: ReturnType<typeof volumeMount>[]; stdin?: Readable; signal?: AbortSignal }, onProgress?: ProgressListener): Promise<ResticSummary> => {
    changed();
    let summary: ResticSummary | undefined;
    const r = await cli.run(['backup', '--json', '--host', options.host, ...artifactTags(b, file).flatMap((t) => ['--tag', t]), ...args], {
      ...extra,
      onLine(line) {
        const msg = parseLine(line);
        if (msg?.message_type === 'summary') summary = msg as unknown as ResticSummary;
        else if (msg?.message_type === 'status' && onProgress && typeof msg.bytes_done === 'number') onProgress({ service: b.service, file, bytes: msg.bytes_done });
      },
    });
    // Exit code 3: a snapshot was made without some unreadable files. Not a backup one can trust.
    if (r.code !== 0 || !summary?.snapshot_id) {
      if (summary?.snapshot_id) await cli.run(['forget', summary.snapshot_id]).catch(() => undefined);
      throw cli.failure(`backup of ${file} of ${b.service}`, r);
    }
    await made(summary.snapshot_id, b, file, path);
    return summary;
  };

  const { snapshots, changed, made, openedBefore, markOpened } = createSnapshotCatalog(cli, options, log);

  const readManifest = async (snap: ResticSnapshot): Promise<BackupManifest | undefined> => {
    // Cached by short id, as `backup --json` names the snapshot it made
    const cached = join(options.manifestCache, `${snap.short_id}.json`);
    const text = await readFile(cached, 'utf8').catch(async () => {
      const path = snap.paths[0];
      if (!path) return undefined;
      const r = await cli.run(['dump', '--no-lock', snap.id, path]);
      if (r.code !== 0) {
        log.warn({ snapshot: snap.short_id, err: cli.failure('dump', r).message }, 'Cannot read a backup manifest');
        return undefined;
      }
      if (options.owner) {
        await mkdir(options.manifestCache, { recursive: true, mode: 0o700 });
        await writeFileAtomic(cached, r.stdout, 0o600);
      }
      return r.stdout;
    });
    try {
      return text ? (JSON.parse(text) as BackupManifest) : undefined;
    } catch {
      return undefined;
    }
  };

  const forget = async (ids: string[]): Promise<void> => {
    if (ids.length === 0) return;
    changed();
    const r = await cli.run(['forget', ...ids]);
    if (r.code !== 0) throw cli.failure('cannot forget snapshots', r);
  };

  const repo: BackupRepository = {
    format: 'restic',
    // Snapshots and their tags are inside restic's repository, authenticated by its key.
    authenticate: () => 'ok',
    location: `restic:${options.s3 ? options.s3.url.replace(/^s3:/, '') : options.dir}`,
    deduplicates: true,
    check: (signal) =>
      cli.exclusive(async () => {
        await cli.open(signal);
        if (await openedBefore()) return;
        changed();
        // a listing by restic, which opens the repository with the password (and refreshes the index)
        await snapshots([], true);
        await markOpened();
      }),

    saveStream: (b, file, body, signal, onProgress) =>
      cli.exclusive(async () => {
        await cli.open(signal);
        const hash = createHashingStream();
        body.on('error', (err) => hash.destroy(err));
        const name = stdinName(b.stack, b.service, file);
        const s = await backup(b, file, `/${name}`, ['--stdin', '--stdin-filename', name], { stdin: body.pipe(hash), ...(signal ? { signal } : {}) }, onProgress);
        return { bytes: hash.bytes(), sha256: hash.digest(), compression: 'restic' as const, snapshot: s.snapshot_id, added: s.data_added };
      }),

    saveFiles: (b, file, from, signal, onProgress) =>
      cli.exclusive(async () => {
        await cli.open(signal);
        if ('volumeName' in from) {
          const path = snapshotPath(b.stack, b.service, file);
          const s = await backup(b, file, path, [path], { mounts: [volumeMount(from.volumeName, path, true)], ...(signal ? { signal } : {}) }, onProgress);
          return { bytes: s.total_bytes_processed, files: s.total_files_processed, compression: 'restic' as const, snapshot: s.snapshot_id, added: s.data_added };
        }
        const tar = await docker.getArchive(from.container, from.path);
        const name = `${stdinName(b.stack, b.service, file)}.tar`;
        const s = await backup(b, file, `/${name}`, ['--stdin', '--stdin-filename', name], { stdin: tar, ...(signal ? { signal } : {}) }, onProgress);
        return { bytes: s.total_bytes_processed, compression: 'restic' as const, snapshot: s.snapshot_id, added: s.data_added };
      }),

    discard: (_b, a) => cli.exclusive(() => forget(a.snapshot ? [a.snapshot] : [])),

    commit: (m) =>
      cli.exclusive(async () => {
        // once per backup: a transaction resumed after a crash may commit again
        if ((await snapshots([`backup=${tagValue(m.id)}`, `artifact=${MANIFEST_ARTIFACT}`])).length > 0) return;
        const text = `${JSON.stringify(m, null, 2)}\n`;
        const ref: BackupRef = { id: m.id, host: m.host, stack: m.stack, service: m.service, reason: m.reason, image: m.image, ...(m.revision ? { revision: m.revision } : {}) };
        const name = stdinName(m.stack, m.service, `${MANIFEST_ARTIFACT}.json`);
        const s = await backup(ref, MANIFEST_ARTIFACT, `/${name}`, ['--stdin', '--stdin-filename', name], { stdin: Readable.from([Buffer.from(text)]) });
        await mkdir(options.manifestCache, { recursive: true, mode: 0o700 });
        await writeFileAtomic(join(options.manifestCache, `${s.snapshot_id.slice(0, 8)}.json`), text, 0o600);
      }),

    list: (prefix = '') =>
      cli.exclusive(async () => {
        const out: BackupManifest[] = [];
        for (const snap of await snapshots([`artifact=${MANIFEST_ARTIFACT}`])) {
          const t = parseTags(snap.tags);
          if (!`${snap.hostname}/${t.stack}/${t.service}/`.startsWith(prefix)) continue;
          const m = await readManifest(snap);
          if (m) out.push(m);
        }
        return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
      }),

    verify: (m, opts = {}) =>
      cli.exclusive(async () => {
        const present = new Set((await snapshots([`backup=${m.id}`])).flatMap((s) => [s.id, s.short_id]));
        // A reader takes no lock: the owner removes any lock it finds as a killed run's.
        const r = await cli.run(['check', ...(options.owner ? [] : ['--no-lock']), ...(opts.readData ? ['--read-data'] : [])]);
        const problem = r.code === 0 ? undefined : cli.failure('restic check', r).message;
        return m.artifacts.map((a): ArtifactCheck => {
          if (!a.snapshot || !present.has(a.snapshot)) return { file: a.file, ok: false, bytes: 0, problem: `snapshot ${a.snapshot ?? '(none)'} is not in the repository` };
          return problem ? { file: a.file, ok: false, bytes: a.bytes, problem } : { file: a.file, ok: true, bytes: a.bytes };
        });
      }),

    remove: (ms) =>
      cli.exclusive(async () => {
        for (const m of ms) {
          const snaps = await snapshots([`backup=${m.id}`]);
          const isManifest = (s: ResticSnapshot) => parseTags(s.tags).artifact === MANIFEST_ARTIFACT;
          await forget(snaps.filter(isManifest).map((s) => s.id));
          await forget(snaps.filter((s) => !isManifest(s)).map((s) => s.id));
        }
      }),

    removeIncomplete: (scope, keep) =>
      cli.exclusive(async () => {
        await cli.open();
        const byBackup = new Map<string, ResticSnapshot[]>();
        for (const s of await snapshots([`stack=${scope.stack}`, `service=${scope.service}`])) {
          const id = parseTags(s.tags).backup;
          if (s.hostname !== scope.host || !id) continue;
          byBackup.set(id, [...(byBackup.get(id) ?? []), s]);
        }
        const removed: string[] = [];
        for (const [id, snaps] of byBackup) {
          if (keep.has(id) || snaps.some((s) => parseTags(s.tags).artifact === MANIFEST_ARTIFACT)) continue;
          await forget(snaps.map((s) => s.id));
          removed.push(id);
        }
        return removed;
      }),

    restoreFiles: (m, a, into) =>
      cli.exclusive(async () => {
        if (!a.snapshot) throw new AgentError('BACKUP_FAILED', `backup ${m.id}: ${a.file} has no restic snapshot`);
        const target = a.target as string;
        if (a.kind === 'volume' && into.volumeName) {
          // Into a scratch volume first: the volume is emptied only once restic has read and
          // authenticated every byte of the snapshot.
          const scratch = `gitops-agent-restore-${randomBytes(4).toString('hex')}`;
          const path = snapshotPath(m.stack, m.service, a.file);
          await docker.ensureVolume(scratch, { [LABELS.managed]: 'true', [LABELS.stack]: m.stack, 'io.gitops-agent.role': 'restore-scratch' });
          let keepScratch = false;
          try {
            const r = await cli.run(['restore', a.snapshot, '--target', '/'], { mounts: [volumeMount(scratch, path, false)] });
            if (r.code !== 0) throw cli.failure(`restore of ${a.file} of backup ${m.id}`, r);
            try {
              await clearVolume(docker, { image: into.image, volumeName: into.volumeName, target, stack: m.stack, copyFrom: scratch });
            } catch (err) {
              // The volume may be half-filled: the restored, verified data stays where it is.
              keepScratch = true;
              throw new AgentError('BACKUP_FAILED', `${errorMessage(err)}; the restored data of ${a.file} is kept in volume ${scratch}: copy it into ${into.volumeName} by hand`, { cause: err, data: { volume: into.volumeName, scratch, emptied: true } });
            }
          } finally {
            if (!keepScratch) await docker.removeVolume(scratch).catch((err: unknown) => log.warn({ volume: scratch, err: errorMessage(err) }, 'Could not remove a restore scratch volume'));
          }
          return;
        }
        const run = await cli.start(['dump', a.snapshot, `/${stdinName(m.stack, m.service, a.file)}.tar`]);
        const put = await docker.putArchive(into.container, posix.dirname(target), run.stdout).then(
          () => undefined,
          (err: unknown) => err,
        );
        run.stdout.resume();
        const code = await run.wait();
        if (code !== 0) throw cli.failure(`restore of ${a.file} of backup ${m.id}`, { code, stdout: '', stderr: run.stderr() });
        if (put) throw new AgentError('BACKUP_FAILED', `restore of ${target} from ${a.file} failed: ${errorMessage(put)}`, { cause: put });
      }),

    open: async (m, a) => {
      if (!a.snapshot) throw new AgentError('BACKUP_FAILED', `backup ${m.id}: ${a.file} has no restic snapshot`);
      // The chain is held for as long as the caller reads, until `done`, which always releases
      // it: a reader that stops early (pg_restore failing) gets restic killed, not blocked.
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => (release = r));
      const kill = new AbortController();
      const started = new Promise<Awaited<ReturnType<ResticCli['start']>>>((resolve, reject) => {
        void cli.exclusive(async () => {
          try {
            resolve(await cli.start(['dump', '--no-lock', a.snapshot as string, `/${stdinName(m.stack, m.service, a.file)}`], { signal: kill.signal }));
          } catch (err) {
            reject(err);
            return;
          }
          await held;
        });
      });
      const run = await started;
      return {
        body: run.stdout,
        async done() {
          try {
            if (!run.stdout.readableEnded) {
              kill.abort();
              run.stdout.resume();
            }
            const code = await run.wait();
            if (code !== 0 && !kill.signal.aborted) throw cli.failure(`reading ${a.file} of backup ${m.id}`, { code, stdout: '', stderr: run.stderr() });
          } finally {
            release();
          }
        },
      };
    },

    drillFiles: (m, a, signal) =>
      cli.exclusive(async () => {
        if (!a.snapshot) return { files: 0, bytes: 0, problem: `${a.file} has no restic snapshot` };
        const path = a.kind === 'volume' ? snapshotPath(m.stack, m.service, a.file) : `/${stdinName(m.stack, m.service, a.file)}.tar`;
        // what the snapshot holds
        let files = 0;
        let bytes = 0;
        // counted line by line: a volume of a million files is a long listing
        const ls = await cli.run(['ls', '--json', '--no-lock', a.snapshot], {
          ...(signal ? { signal } : {}),
          onLine(line) {
            const node = parseLine(line);
            if (node?.struct_type === 'node' && node.type === 'file' && typeof node.size === 'number') {
              files++;
              bytes += node.size;
            }
          },
        });
        if (ls.code !== 0) return { files: 0, bytes: 0, problem: cli.failure('restic ls', ls).message };
        // what a restore gives, into a scratch volume, each file read back and compared
        const scratch = `gitops-agent-drill-${randomBytes(4).toString('hex')}`;
        const mountAt = a.kind === 'volume' ? path : '/drill';
        await docker.ensureVolume(scratch, { [LABELS.managed]: 'true', [LABELS.stack]: m.stack, 'io.gitops-agent.role': 'drill-scratch' });
        try {
          const r = await cli.run(['restore', a.snapshot, '--target', a.kind === 'volume' ? '/' : mountAt, '--verify'], { mounts: [volumeMount(scratch, mountAt, false)], ...(signal ? { signal } : {}) });
          if (r.code !== 0) return { files, bytes, problem: cli.failure('restic restore --verify', r).message };
          // counted again on the restored volume
          let summary: ResticSummary | undefined;
          const counted = await cli.run(['backup', '--dry-run', '--json', '--host', `${options.host}-drill`, mountAt], {
            mounts: [volumeMount(scratch, mountAt, true)],
            ...(signal ? { signal } : {}),
            onLine(line) {
              const msg = parseLine(line);
              if (msg?.message_type === 'summary') summary = msg as unknown as ResticSummary;
            },
          });
          if (counted.code !== 0 || !summary) return { files, bytes, problem: cli.failure('counting the restored files', counted).message };
          if (summary.total_files_processed !== files || summary.total_bytes_processed !== bytes) return { files, bytes, problem: `restored ${summary.total_files_processed} files, ${summary.total_bytes_processed} B; the snapshot holds ${files} files, ${bytes} B` };
          return { files, bytes };
        } finally {
          await docker.removeVolume(scratch).catch((err: unknown) => log.warn({ volume: scratch, err: errorMessage(err) }, 'Could not remove a drill scratch volume'));
        }
      }),

    // `prune` rewrites the packs that hold forgotten data: minutes on a large repository, so at
    // most once a day (forgotten data stays until then), by the owner.
    maintain: (signal) =>
      cli.exclusive(async () => {
        if (!options.owner) return;
        const file = join(options.manifestCache, 'pruned.json');
        const last = await readFile(file, 'utf8').then((t) => Date.parse((JSON.parse(t) as { at?: string }).at ?? ''), () => NaN);
        if (Date.now() - last < PRUNE_EVERY_MS) {
          log.debug({ repository: cli.where, lastPrune: new Date(last).toISOString() }, 'restic prune is due a day after the last one');
          return;
        }
        await cli.open(signal);
        const r = await cli.run(['prune'], signal ? { signal } : {});
        if (r.code !== 0) throw cli.failure('restic prune', r);
        await mkdir(options.manifestCache, { recursive: true, mode: 0o700 });
        await writeFileAtomic(file, `${JSON.stringify({ at: new Date().toISOString() })}\n`, 0o600);
        log.info({ repository: cli.where }, 'restic repository pruned');
      }),
  };
  return repo;
}

function volumeMount(source: string, target: string, readOnly: boolean) {
  return { type: 'volume' as const, source, target, readOnly };
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
