/**
 * Temp dirs of the Git helpers (server roots, workspaces, CLI clones). Each gets a sibling
 * `<dir>.pid` naming the test process, so that dirs of a process killed before its clean-up
 * (a test run interrupted with ^C...) are removed by the next run instead of piling up in /tmp.
 * The pid file is outside the dir: a workspace's working tree stays exactly what Git wrote.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, readPid } from './cleanup.js';

export type GitTempPrefix = 'gagit' | 'gaws' | 'gacli';

const swept = new Set<GitTempPrefix>();

/** A new empty `/tmp/<prefix>-XXXXXX`; remove it with removeGitTempDir. */
export function gitTempDir(prefix: GitTempPrefix): string {
  if (!swept.has(prefix)) {
    swept.add(prefix);
    sweep(prefix);
  }
  const dir = mkdtempSync(`/tmp/${prefix}-`);
  writeFileSync(`${dir}.pid`, `${process.pid}\n`);
  return dir;
}

export function removeGitTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.pid`, { force: true });
}

function sweep(prefix: GitTempPrefix): void {
  for (const name of readdirSync('/tmp')) {
    if (!name.startsWith(`${prefix}-`) || !name.endsWith('.pid')) continue;
    const pid = readPid(join('/tmp', name));
    if (pid !== undefined && !isAlive(pid)) removeGitTempDir(join('/tmp', name.slice(0, -'.pid'.length)));
  }
}
