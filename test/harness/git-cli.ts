/**
 * The git CLI, asynchronously. Tests use it to check what a plain `git clone` sees, as a
 * second opinion next to isomorphic-git. Always async: the test's Git server runs on the
 * same event loop, so a synchronous git call against it would deadlock.
 */
import { spawn } from 'node:child_process';
import { gitTempDir, removeGitTempDir } from './git-temp.js';

export interface GitCliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface GitCliOptions {
  cwd?: string;
  /** Added to the environment. */
  env?: Record<string, string>;
  /** Kill git after this many ms. Default 60 s. */
  timeoutMs?: number;
  /** Resolve with a non-zero code instead of rejecting. */
  allowFailure?: boolean;
}

/**
 * Run `git ARGS...`. Never prompts (GIT_TERMINAL_PROMPT=0: a missing or wrong password
 * fails at once instead of waiting on a terminal), ignores the machine's user and system
 * config, and has a fixed identity for commits.
 */
export function git(args: string[], opts: GitCliOptions = {}): Promise<GitCliResult> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Git CLI',
    GIT_AUTHOR_EMAIL: 'cli@example.test',
    GIT_COMMITTER_NAME: 'Git CLI',
    GIT_COMMITTER_EMAIL: 'cli@example.test',
    ...opts.env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (code === 0 || opts.allowFailure) resolve(result);
      else reject(Object.assign(new Error(`git ${redact(args.join(' '))} exited ${code}: ${redact(stderr.trim())}`), result));
    });
  });
}

/** Hide `user:password@` of URLs in messages. */
const redact = (s: string): string => s.replace(/\/\/[^/@\s]+@/g, '//***@');

/**
 * `git clone` into a fresh temp dir (pass a URL with credentials, e.g.
 * GitServer.credentialUrl), hand the dir to `fn`, then remove it.
 */
export async function withCliClone<T>(url: string, fn: (dir: string) => Promise<T> | T, branch = 'main'): Promise<T> {
  const dir = gitTempDir('gacli');
  try {
    await git(['clone', '--quiet', '--branch', branch, url, dir]);
    return await fn(dir);
  } finally {
    removeGitTempDir(dir);
  }
}
