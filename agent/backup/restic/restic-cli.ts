import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { AgentError, errorMessage } from '../../core/errors.js';
import { LABELS } from '../../core/labels.js';
import type { Mount } from '../../model/desired.js';
import type { DockerPort, StreamRun } from '../../ports/docker.js';
import { writeFileAtomic } from '../../state/atomic-file.js';

/** AWS credentials, as the agent's own chain resolves them. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface ResticOptions {
  /** The repository: a local directory (bind-mounted into restic's container at /repo)... */
  dir: string;
  /** ...or S3, reached from restic's container on the host's network. */
  s3?: { url: string; region?: string; caCertFile?: string; credentials: () => Promise<AwsCredentials> };
  /** The restic image, pinned by digest; restic is its entrypoint. */
  image: string;
  passwordFile: string;
  /** restic's `--host`: fixed, so that parent snapshots are found and `forget` groups hold. */
  host: string;
  /** The process that owns the state directory: it may create the repository and remove stale locks. */
  owner: boolean;
}

export const RESTIC_ROLE = 'restic';
const CACHE_VOLUME = 'gitops-agent-restic-cache';
const PASSWORD_PATH = '/tmp/.restic-password';
const AWS_CREDENTIALS_PATH = '/tmp/.aws-credentials';
const CA_PATH = '/tmp/.restic-ca.pem';
// restic says "Is there a repository at the following location?" after any error reading the
// config (a 403, DNS, TLS): only S3's own "no such key" means there is none to open.
const MISSING_REPOSITORY = /specified key does not exist|NoSuchKey|key does not exist/i;
const OUTPUT_LIMIT = 64 * 1024 * 1024;

export interface ResticResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * restic, run in a throwaway container of its image through the Docker API: the repository
 * bind-mounted, a cache volume, the password written into the container as a file (never in its
 * environment), no network. One operation at a time per process; the state directory's lock
 * keeps other writers out, so a lock found in the repository is a killed run's, and the owner
 * removes it (`unlock --remove-all`) and tries once more.
 */
export class ResticCli {
  private chain: Promise<unknown> = Promise.resolve();
  private opened = false;

  constructor(
    private readonly docker: DockerPort,
    readonly options: ResticOptions,
    private readonly log: Logger,
  ) {}

  /** Runs `fn` alone: restic operations of this process never overlap. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.catch(() => undefined).then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Opens the repository, creating it (and its password) the first time; pulls the image if missing. */
  async open(signal?: AbortSignal): Promise<void> {
    if (this.opened) return;
    const { dir, passwordFile, image } = this.options;
    if (!(await this.docker.hasImage(image))) {
      // An image id names a local image: there is nothing to pull it from.
      if (image.startsWith('sha256:')) throw new AgentError('BACKUP_FAILED', `the restic image ${image} is not on this engine: build it again with \`agent backup restic-image\` and set backup.restic.image to the id it prints`);
      await this.docker.pullImage(image, signal ? { signal } : {});
    }
    const exists = this.options.s3 ? await this.s3Exists() : existsSync(join(dir, 'config'));
    if (!exists) {
      if (!this.options.owner) throw new AgentError('BACKUP_FAILED', `no restic repository at ${dir} yet: the agent creates it with its first backup`);
      if (!this.options.s3) await mkdir(dir, { recursive: true, mode: 0o700 });
      // A new password is kept only once the repository it opens exists: never one for a
      // repository that failed to be created, which an operator might escrow.
      const generated = existsSync(passwordFile) ? undefined : Buffer.from(`${randomBytes(32).toString('base64url')}\n`);
      const r = await this.collect(await this.start(['init'], {}, generated));
      if (r.code !== 0) throw this.failure('cannot create the restic repository', r);
      if (generated) {
        await writeFileAtomic(passwordFile, generated.toString(), 0o600);
        this.log.warn({ passwordFile, repository: this.where }, 'Generated the restic repository password: keep a copy outside this host (without it the backups cannot be read)');
      }
      this.log.info({ repository: this.where }, 'Created the restic repository');
    } else {
      if (!existsSync(passwordFile)) throw new AgentError('BACKUP_FAILED', `cannot open the restic repository ${this.where}: its password file ${passwordFile} is missing (restore it from your escrow copy)`, { data: { passwordFile } });
      // restic containers a killed agent left, exited: removed (they hold the password file).
      // A lock left in the repository blocks check and prune: removed when no restic runs.
      if (this.options.owner) {
        await this.removeExited();
        // (in S3, looking costs what removing costs: a run, so it is removed without looking)
        if (this.options.s3) await this.unlock(false);
        else if ((await readdir(join(dir, 'locks')).catch(() => [])).length > 0) await this.unlock(true);
      }
    }
    // Opened for real (the password checked) by the first command, which every caller runs
    // before anything changes: listing the snapshots.
    this.opened = true;
  }

  /** Runs a command and collects its output; the owner retries once after removing a stale lock. */
  async run(args: string[], extra: { mounts?: Mount[]; stdin?: Readable; signal?: AbortSignal; onLine?: (line: string) => void } = {}): Promise<ResticResult> {
    const t0 = Date.now();
    const first = await this.collect(await this.start(args, extra), extra.onLine);
    this.log.debug({ command: args[0], code: first.code, ms: Date.now() - t0 }, 'restic');
    if (first.code === 0 || !this.options.owner || extra.stdin || !isLockConflict(first.stderr)) return first;
    if (!(await this.unlock(true))) return first;
    return this.collect(await this.start(args, extra), extra.onLine);
  }

  /** Where the repository is, for people: a path or an S3 URL. */
  get where(): string {
    return this.options.s3?.url ?? this.options.dir;
  }

  /**
   * Removes the repository's locks, only when no restic container runs on the engine: this
   * process runs one operation at a time (none now), so a lock is then a killed run's. One that
   * runs (the agent's or a command's beside it) keeps its lock; the operation waiting for it
   * fails and is retried later. A repository is per host: locks of other hosts are not seen.
   */
  private async unlock(seen: boolean): Promise<boolean> {
    const running = await this.docker.listContainers({ [LABELS.managed]: 'true', 'io.gitops-agent.role': RESTIC_ROLE });
    if (running.some((c) => c.status === 'running' || c.status === 'created' || c.status === 'restarting')) {
      if (seen) this.log.warn({ repository: this.where, running: running.length }, 'The restic repository is locked by a restic that still runs; not removing its lock');
      return false;
    }
    if (seen) this.log.warn({ repository: this.where }, 'Removing the restic lock a killed run left');
    const r = await this.collect(await this.start(['unlock', '--remove-all'], {}));
    if (r.code !== 0) this.log.error({ repository: this.where, err: this.failure('unlock', r).message }, 'Cannot remove the restic lock');
    return r.code === 0;
  }

  /** Starts a command whose standard output the caller reads (`dump`). */
  async start(args: string[], extra: { mounts?: Mount[]; stdin?: Readable; signal?: AbortSignal } = {}, passwordOverride?: Buffer): Promise<StreamRun> {
    const password =
      passwordOverride ??
      (await readFile(this.options.passwordFile).catch((err: unknown) => {
        throw new AgentError('BACKUP_FAILED', `cannot read the restic password file ${this.options.passwordFile}: ${errorMessage(err)}`, { cause: err });
      }));
    await this.docker.ensureVolume(CACHE_VOLUME, { [LABELS.managed]: 'true' });
    const s3 = this.options.s3;
    const mounts: Mount[] = [...(s3 ? [] : [{ type: 'bind' as const, source: this.options.dir, target: '/repo', readOnly: false }]), { type: 'volume', source: CACHE_VOLUME, target: '/cache', readOnly: false }, ...(extra.mounts ?? [])];
    const files = [{ path: PASSWORD_PATH, content: password, mode: 0o400 }];
    const env = [`RESTIC_REPOSITORY=${s3 ? s3.url : '/repo'}`, `RESTIC_PASSWORD_FILE=${PASSWORD_PATH}`, 'RESTIC_CACHE_DIR=/cache', 'RESTIC_PROGRESS_FPS=2'];
    const pre: string[] = [];
    if (s3) {
      // The credentials as a file: the engine shows a container's environment to whoever inspects it.
      const c = await s3.credentials();
      files.push({ path: AWS_CREDENTIALS_PATH, content: Buffer.from(`[default]\naws_access_key_id = ${c.accessKeyId}\naws_secret_access_key = ${c.secretAccessKey}\n${c.sessionToken ? `aws_session_token = ${c.sessionToken}\n` : ''}`), mode: 0o400 });
      env.push(`AWS_SHARED_CREDENTIALS_FILE=${AWS_CREDENTIALS_PATH}`);
      if (s3.caCertFile) {
        files.push({ path: CA_PATH, content: await readFile(s3.caCertFile), mode: 0o444 });
        pre.push('--cacert', CA_PATH);
      }
      if (s3.region) pre.push('-o', `s3.region=${s3.region}`);
    }
    return this.docker.runStream(
      {
        image: this.options.image,
        argv: [...pre, ...args],
        mounts,
        env,
        files,
        labels: { [LABELS.managed]: 'true', 'io.gitops-agent.role': RESTIC_ROLE },
        hostname: this.options.host,
        ...(s3 ? { networkMode: 'host' } : {}),
        ...(extra.stdin ? { stdin: extra.stdin } : {}),
      },
      extra.signal,
    );
  }

  failure(what: string, r: ResticResult): AgentError {
    const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('; ').slice(0, 1000);
    return new AgentError('BACKUP_FAILED', `${what}: restic exited with code ${r.code}: ${detail || 'no output'}`, { data: { exitCode: r.code } });
  }

  private async collect(run: StreamRun, onLine?: (line: string) => void): Promise<ResticResult> {
    let stdout = '';
    let pending = '';
    run.stdout.setEncoding('utf8');
    try {
      for await (const chunk of run.stdout as AsyncIterable<string>) {
        // read line by line, the output is not kept beyond what an error message needs
        if (stdout.length < (onLine ? 64 * 1024 : OUTPUT_LIMIT)) stdout += chunk;
        if (onLine) {
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) if (l.trim()) onLine(l);
        }
      }
    } catch (err) {
      // the output broke (the engine's connection): restic is stopped and its container removed
      await run.kill();
      await run.wait().catch(() => undefined);
      throw err;
    }
    if (onLine && pending.trim()) onLine(pending);
    const code = await run.wait();
    return { code, stdout, stderr: run.stderr() };
  }

  /** S3: whether the repository exists, told by restic itself (its config object). */
  private async s3Exists(): Promise<boolean> {
    if (!existsSync(this.options.passwordFile)) {
      // Without a password nothing can be read: a new repository, unless restic finds one.
      const probe = await this.collect(await this.start(['cat', 'config'], {}, Buffer.from('-\n')));
      return !MISSING_REPOSITORY.test(probe.stderr);
    }
    const r = await this.collect(await this.start(['cat', 'config']));
    if (r.code === 0) return true;
    if (MISSING_REPOSITORY.test(r.stderr)) return false;
    throw this.failure(`cannot open the restic repository ${this.options.s3?.url ?? ''}`, r);
  }

  private async removeExited(): Promise<void> {
    for (const c of await this.docker.listContainers({ [LABELS.managed]: 'true', 'io.gitops-agent.role': RESTIC_ROLE })) {
      // (a minute after it exited: the process that ran it, beside this one, has removed it by then)
      if ((c.status !== 'exited' && c.status !== 'dead') || Date.now() - Date.parse(c.finishedAt) < 60_000) continue;
      this.log.warn({ container: c.id.slice(0, 12), status: c.status }, 'Removing a restic container a killed agent left');
      await this.docker.removeContainer(c.id);
    }
  }
}

function isLockConflict(stderr: string): boolean {
  return /repository is already locked|unable to create lock|locked (exclusively )?by PID/i.test(stderr);
}
