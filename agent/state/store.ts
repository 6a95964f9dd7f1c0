import { appendFile, chmod, link, mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AgentError, errorMessage, isAgentError } from '../core/errors.js';
import { emptyState, type AgentState } from '../model/agent-state.js';
import type { AppliedRecord, TransactionRecord } from '../model/records.js';
import type { StateDocument, StateDocumentName, StatePort } from '../ports/state.js';
import { readJsonFile, removeFileDurably, writeFileAtomic } from './atomic-file.js';
import { JournalStore } from './journal-store.js';
import { isLockLive, readLockFile } from './lock-file.js';
import { acquireStateLock } from './lock.js';
import { ServiceLocks } from './service-lock.js';
import { migrateState } from './migrate.js';

export const DEFAULT_HISTORY_LIMIT = 500;

/**
 * Every name in the state directory, in one place:
 *   state.json          conditions, per-service results, what the source last said
 *   applied/<svc>.json  last applied spec per service (0600: may hold secrets)
 *   journal/<svc>.json  in-flight transactions (0600)
 *   history.jsonl       finished transactions, bounded
 *   lock                the agent process that owns the directory
 *   locks/<svc>.lock    who is busy with a service (transaction, backup, restore)
 *   notifier.json       notification channels: counters, repeats held back
 *   jobs.json           scheduled jobs: last run and result
 *   drills.json         the last restore drill of each service
 *   git/repo.git        the agent's copy of the desired-state repository
 *   backups/            the default local archive store
 *   restic/             the default local restic repository
 *   restic-password     its password (0600), generated when the repository is created
 *   restic-manifests/   the manifests read from the repository, by snapshot (immutable)
 */
export const STATE_FILES = {
  state: 'state.json',
  applied: 'applied',
  journal: 'journal',
  history: 'history.jsonl',
  lock: 'lock',
  locks: 'locks',
  git: join('git', 'repo.git'),
  backups: 'backups',
  restic: 'restic',
  resticPassword: 'restic-password',
  resticManifests: 'restic-manifests',
  specHashKey: 'spec-hash.key',
  manifestKey: 'backup-manifest.key',
} as const;

const DOCUMENTS: Record<StateDocumentName, { file: string; mode: number }> = {
  notifier: { file: 'notifier.json', mode: 0o600 },
  jobs: { file: 'jobs.json', mode: 0o600 },
  drills: { file: 'drills.json', mode: 0o600 },
};

/** The state directory on disk: atomic, fsync'd writes; state.json is 0644 and never holds secrets. */
export class StateStore implements StatePort {
  readonly journals: JournalStore;
  readonly locks: ServiceLocks;

  constructor(
    readonly dir: string,
    private readonly historyLimit = DEFAULT_HISTORY_LIMIT,
  ) {
    this.journals = new JournalStore(join(dir, STATE_FILES.journal));
    this.locks = new ServiceLocks(join(dir, STATE_FILES.locks));
  }

  get location(): string {
    return this.dir;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700).catch(() => undefined);
    // Every state file is 0600: the ones an earlier version wrote 0644 (state, history, jobs,
    // drills) are tightened here; each is rewritten 0600 from now on.
    for (const file of [STATE_FILES.state, STATE_FILES.history, ...Object.values(DOCUMENTS).map((d) => d.file)]) await chmod(join(this.dir, file), 0o600).catch(() => undefined);
  }

  async load(): Promise<AgentState> {
    const path = join(this.dir, STATE_FILES.state);
    try {
      const raw = await readJsonFile<unknown>(path);
      return raw === undefined ? emptyState() : migrateState(raw);
    } catch (err) {
      if (isAgentError(err)) throw err;
      throw new AgentError('STATE_CORRUPT', `cannot read ${path}: ${(err as Error).message}`, { cause: err, data: { path } });
    }
  }

  async save(state: AgentState): Promise<void> {
    await writeFileAtomic(join(this.dir, STATE_FILES.state), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  async loadApplied(): Promise<Record<string, AppliedRecord>> {
    const dir = join(this.dir, STATE_FILES.applied);
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AgentError('STATE_IO', `cannot read ${dir}: ${(err as Error).message}`, { cause: err, data: { path: dir } });
    }
    const out: Record<string, AppliedRecord> = {};
    for (const n of names.filter((f) => f.endsWith('.json') && !f.startsWith('.')).sort()) {
      const rec = await readJsonFile<AppliedRecord>(join(dir, n));
      if (rec) out[n.slice(0, -'.json'.length)] = rec;
    }
    return out;
  }

  async saveApplied(service: string, record: AppliedRecord): Promise<void> {
    await writeFileAtomic(join(this.dir, STATE_FILES.applied, `${service}.json`), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  async removeApplied(service: string): Promise<void> {
    await removeFileDurably(join(this.dir, STATE_FILES.applied, `${service}.json`));
  }

  async appendHistory(record: TransactionRecord): Promise<void> {
    const path = join(this.dir, STATE_FILES.history);
    let lines: string[];
    try {
      await appendFile(path, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    } catch (err) {
      throw new AgentError('STATE_IO', `cannot append to ${path}: ${(err as Error).message}`, { cause: err, data: { path } });
    }
    // Compact when twice over the limit, so appends stay cheap and the file stays bounded.
    if (lines.length > this.historyLimit * 2) await writeFileAtomic(path, `${lines.slice(-this.historyLimit).join('\n')}\n`, 0o600);
  }

  async readHistory(limit = 50): Promise<TransactionRecord[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, STATE_FILES.history), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new AgentError('STATE_IO', `cannot read the history: ${(err as Error).message}`, { cause: err });
    }
    const out: TransactionRecord[] = [];
    for (const line of text.split('\n').filter(Boolean).slice(-limit)) {
      try {
        out.push(JSON.parse(line) as TransactionRecord);
      } catch {
        // A torn last line after a crash: skip it, the rest is intact.
      }
    }
    return out;
  }

  document<T>(name: StateDocumentName): StateDocument<T> {
    const { file, mode } = DOCUMENTS[name];
    const path = join(this.dir, file);
    return {
      load: () => readJsonFile<T>(path),
      save: (value) => writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode),
    };
  }

  async readDocument<T>(name: StateDocumentName): Promise<T | undefined> {
    return this.document<T>(name).load().catch(() => undefined);
  }

  async agentHolder(): Promise<{ pid: number; host: string } | undefined> {
    const lock = await readLockFile(join(this.dir, STATE_FILES.lock));
    return lock && isLockLive(lock.record, lock.mtimeMs) ? { pid: lock.record.pid, host: lock.record.host } : undefined;
  }

  serviceHolder(service: string) {
    return this.locks.holder(service);
  }

  lockAgent() {
    return acquireStateLock(this.dir);
  }

  /**
   * The host's key for spec hashes (32 random bytes, 0600): made by the first command that
   * changes things; read-only commands only read it (before it exists, no container is labelled with it).
   */
  async specHashKey(create: boolean): Promise<Buffer | undefined> {
    return this.hostKey(STATE_FILES.specHashKey, create, 'a new key would recreate every container');
  }

  /** The key archive manifests are authenticated with (backup.manifestKeyFile overrides it: hosts sharing a bucket share it). */
  async manifestKey(create: boolean): Promise<Buffer | undefined> {
    return this.hostKey(STATE_FILES.manifestKey, create, 'a new key leaves the backups made so far unauthenticated');
  }

  private async hostKey(name: string, create: boolean, lossWarning: string): Promise<Buffer | undefined> {
    const file = join(this.dir, name);
    const existing = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new AgentError('STATE_CORRUPT', `cannot read the key ${file}: ${err.message}`, { cause: err });
    });
    if (existing !== undefined) {
      if (!/^[0-9a-f]{64}\n?$/.test(existing)) throw new AgentError('STATE_CORRUPT', `the key ${file} is not 64 hex digits: restore it from a backup of the state directory (${lossWarning})`);
      return Buffer.from(existing.trim(), 'hex');
    }
    if (!create) return undefined;
    await mkdir(this.dir, { recursive: true });
    // Written aside, then linked into place: two first runs at once agree on one key (link fails on the second).
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await writeFileAtomic(tmp, `${randomBytes(32).toString('hex')}\n`, 0o600);
    try {
      await link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AgentError('STATE_CORRUPT', `cannot write the key ${file}: ${errorMessage(err)}`, { cause: err });
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    return this.hostKey(name, false, lossWarning);
  }

  gitDir(): string {
    return join(this.dir, STATE_FILES.git);
  }
}
