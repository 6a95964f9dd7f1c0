import { appendFile, chmod, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../core/errors.js';
import type { AppliedRecord } from '../model/records.js';
import { emptyState, type AgentState } from '../model/agent-state.js';
import { type TransactionRecord } from '../model/records.js';
import { readJsonFile, removeFileDurably, writeFileAtomic } from './atomic-file.js';
import { JournalStore } from './journal-store.js';
import { ServiceLocks } from './service-lock.js';

export const DEFAULT_HISTORY_LIMIT = 500;

/**
 * The agent's state directory:
 *   state.json          conditions, per-service results, what the source last said
 *   applied/<svc>.json  last applied spec per service (0600: may hold secrets)
 *   journal/<svc>.json  in-flight transactions
 *   history.jsonl       finished transactions, bounded
 *   lock                pid of the agent process that owns the directory
 */
export class StateStore {
  readonly journals: JournalStore;
  readonly locks: ServiceLocks;

  constructor(
    readonly dir: string,
    private readonly historyLimit = DEFAULT_HISTORY_LIMIT,
  ) {
    this.journals = new JournalStore(join(dir, 'journal'));
    this.locks = new ServiceLocks(join(dir, 'locks'));
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700).catch(() => undefined);
  }

  async load(): Promise<AgentState> {
    try {
      return (await readJsonFile<AgentState>(join(this.dir, 'state.json'))) ?? emptyState();
    } catch (err) {
      throw new AgentError('STATE_CORRUPT', `cannot read ${join(this.dir, 'state.json')}: ${(err as Error).message}`, { cause: err });
    }
  }

  async save(state: AgentState): Promise<void> {
    await writeFileAtomic(join(this.dir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`, 0o644);
  }

  async loadApplied(): Promise<Record<string, AppliedRecord>> {
    const dir = join(this.dir, 'applied');
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const out: Record<string, AppliedRecord> = {};
    for (const n of names.filter((f) => f.endsWith('.json') && !f.startsWith('.')).sort()) {
      const rec = await readJsonFile<AppliedRecord>(join(dir, n));
      if (rec) out[n.slice(0, -'.json'.length)] = rec;
    }
    return out;
  }

  async saveApplied(service: string, record: AppliedRecord): Promise<void> {
    await writeFileAtomic(join(this.dir, 'applied', `${service}.json`), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  async removeApplied(service: string): Promise<void> {
    await removeFileDurably(join(this.dir, 'applied', `${service}.json`));
  }

  async appendHistory(record: TransactionRecord): Promise<void> {
    const path = join(this.dir, 'history.jsonl');
    await appendFile(path, `${JSON.stringify(record)}\n`, { mode: 0o644 });
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    // Compact when twice over the limit, so appends stay cheap and the file stays bounded.
    if (lines.length > this.historyLimit * 2) await writeFileAtomic(path, `${lines.slice(-this.historyLimit).join('\n')}\n`, 0o644);
  }

  async readHistory(limit = 50): Promise<TransactionRecord[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'history.jsonl'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
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
}
