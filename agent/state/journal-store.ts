import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../core/errors.js';
import type { Journal } from '../model/journal.js';
import type { JournalPort } from '../ports/state.js';
import { readJsonFile, removeFileDurably, writeFileAtomic } from './atomic-file.js';

/** Journals live in `<state>/journal/<service>.json`; mode 0600 because specs may carry secrets. */
export class JournalStore implements JournalPort {
  constructor(private readonly dir: string) {}

  private path(service: string): string {
    return join(this.dir, `${service}.json`);
  }

  async write(journal: Journal): Promise<void> {
    await writeFileAtomic(this.path(journal.service), `${JSON.stringify(journal, null, 2)}\n`, 0o600);
  }

  async read(service: string): Promise<Journal | undefined> {
    return readJsonFile<Journal>(this.path(service));
  }

  async remove(service: string): Promise<void> {
    await removeFileDurably(this.path(service));
  }

  async list(): Promise<Journal[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new AgentError('STATE_IO', `cannot read the journals in ${this.dir}: ${(err as Error).message}`, { cause: err, data: { path: this.dir } });
    }
    const journals: Journal[] = [];
    for (const n of names.filter((f) => f.endsWith('.json') && !f.startsWith('.')).sort()) {
      const j = await readJsonFile<Journal>(join(this.dir, n));
      if (j) journals.push(j);
    }
    return journals;
  }
}
