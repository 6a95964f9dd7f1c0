import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import pino, { type Logger } from 'pino';
import { newTxId } from '../apply/transaction.js';
import { createProjectFiles } from '../apply/project-files.js';
import { projectRootsIn } from '../desired/project-files.js';
import { createTxBackup } from '../backup/tx-backup.js';
import { createLocalStore } from '../backup/store/local.js';
import type { OperationDeps } from '../backup/operations.js';
import { loadConfig, loadInterpolationEnv, type AgentConfig, type ConfigOverrides, type GitSourceConfig } from '../config/config.js';
import { parseEnvFile } from '../desired/env-file.js';
import { systemClock, type Clock } from '../core/clock.js';
import { AgentError, errorMessage } from '../core/errors.js';
import { addKnownSecrets, knownSecrets } from '../core/known-secrets.js';
import { failpointsFromEnv, type Failpoint } from '../core/failpoints.js';
import type { Env } from '../desired/interpolate.js';
import { createDockerAdapter } from '../docker/dockerode-adapter.js';
import { runHealthGate } from '../health/gate.js';
import type { BackupManifest, DrillResult } from '../model/backup.js';
import type { JobSpec } from '../model/desired.js';
import type { ReconcileReport } from '../model/report.js';
import type { Notifier } from '../notify/notifier.js';
import type { BackupStore } from '../ports/backup-store.js';
import type { BackupRepository } from '../ports/backup-repository.js';
import { readOnlyDocker, type DockerPort, type DockerReader } from '../ports/docker.js';
import type { GitPort } from '../ports/git.js';
import type { DesiredSource } from '../ports/source.js';
import type { StatePort, StateReader } from '../ports/state.js';
import type { AssessDeps, LoadCache } from '../reconcile/assess.js';
import type { ReconcileDeps } from '../reconcile/reconcile.js';
import type { CertbotResult } from '../schedule/certbot.js';
import { redactJsonStrings, redactText } from '../source/git/credentials.js';
import { createLocalDirSource } from '../source/local-dir.js';
import { STATE_FILES, StateStore } from '../state/store.js';
import { terminalProgress } from './progress.js';

/**
 * What read-only commands (`status`, `plan`, `validate`, `backup list|verify`) run with: the
 * engine without any method that changes a container, the state directory without any write,
 * the source without the commit-signing key. `status` reads the last fetched commit, as the
 * running agent saw it, and fetches nothing.
 */
export interface ReadOnlyRuntime {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  docker: DockerReader;
  state: StateReader;
  backups: BackupRepository;
  source: DesiredSource;
  /** Variables for `${VAR}` in the desired state: the environment, then the env file. */
  env(): Promise<Env>;
  /** What `assess` needs: built once. */
  assessDeps: AssessDeps;
  /** Git: the source reads the commit the agent fetched last instead of fetching (a running agent owns the copy). */
  sourceOffline: boolean;
}

/** What `agent run`, `agent apply` and the backup commands run with: every port, built once. */
export interface Runtime extends ReadOnlyRuntime {
  docker: DockerPort;
  state: StatePort;
  failpoint: Failpoint;
  /** Git sources: the agent's copy of the repository. */
  git?: GitPort;
  /** What every reconcile pass needs; built once (the commit-signing key is loaded here, when reverts are on). */
  reconcileDeps(): Promise<ReconcileDeps>;
  /** What backups and restores run with (commands and scheduled jobs). */
  operations(): OperationDeps;
  /** The webhook's HMAC secret, when one is configured. */
  webhookSecret(): Promise<string | undefined>;
  /** Observers set by `agent run` (metrics, notifications); empty for one-shot commands. */
  hooks: RuntimeHooks;
  /** The notifier of the configured channels, or undefined when there are none. */
  notifier(): Promise<Notifier | undefined>;
  /** Keeps a restore drill's result (the service's last drill, for status) and tells the observers. */
  recordDrill(r: DrillResult): Promise<void>;
}

export interface RuntimeHooks {
  onBackup?: (m: BackupManifest) => void;
  onDrill?: (r: DrillResult) => void;
  onReconcile?: (r: ReconcileReport) => void;
  onCertificates?: (job: JobSpec, outcome: { ok: true; result: CertbotResult } | { ok: false; error: string }) => void;
  onBackupJobFailed?: (job: JobSpec, error: string) => void;
  /** Waits for what the observers still have to send (notifications). */
  flush?: () => Promise<void>;
}

export interface RuntimeOptions {
  defaultLogLevel?: string;
}

/** Field names whose values never reach a log line, whatever code logs them. */
const REDACTED_FIELDS = ['password', 'token', 'secret', 'authorization', 'auth', '*.password', '*.token', '*.secret', '*.authorization', '*.auth', 'headers.authorization'];

/**
 * Structured JSON logs on stderr (fixed messages, data as fields); human-readable lines when
 * stderr is a terminal (AGENT_LOG_FORMAT=json|pretty forces one).
 */
export async function createLogger(level: string): Promise<Logger> {
  // Fields named like secrets by path; the secret values seen so far wherever they are in a
  // string of the line (only in strings: a value like `1000` must not garble a number field).
  const streamWrite = (line: string) => {
    const secrets = knownSecrets();
    return secrets.length > 0 ? redactJsonStrings(line, secrets) : line;
  };
  const options = { level, base: { name: 'gitops-agent' }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACTED_FIELDS, censor: '[redacted]' }, hooks: { streamWrite } };
  const format = process.env.AGENT_LOG_FORMAT ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (format === 'pretty') {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,name' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** The AWS SDK, isomorphic-git and openpgp are loaded only when configured: each costs 20 MB of memory. */
export async function createBackupRepository(config: AgentConfig, docker: DockerPort, log: Logger, owner: boolean): Promise<BackupRepository> {
  const b = config.backup;
  if (b.kind === 'restic') {
    const { createResticRepository } = await import('../backup/restic/restic-repository.js');
    const s3 = b.s3
      ? {
          url: `s3:${b.s3.endpoint.replace(/\/+$/, '')}/${b.s3.bucket}/${(b.s3.prefix ?? `gitops-agent/${config.host}`).replace(/^\/+|\/+$/g, '')}`,
          ...(b.s3.region ? { region: b.s3.region } : {}),
          ...(b.s3.caCertFile ? { caCertFile: b.s3.caCertFile } : {}),
          // The agent's own AWS chain (environment, shared files, instance role), resolved when restic needs it.
          credentials: async () => {
            const { S3Client } = await import('@aws-sdk/client-s3');
            const client = new S3Client({ region: b.s3?.region ?? 'us-east-1' });
            try {
              return await client.config.credentials();
            } finally {
              client.destroy();
            }
          },
        }
      : undefined;
    return createResticRepository(docker, { dir: b.dir, ...(s3 ? { s3 } : {}), image: b.image, passwordFile: b.passwordFile, host: config.host, owner, manifestCache: join(config.stateDir, STATE_FILES.resticManifests) }, log);
  }
  const { createArchiveRepository } = await import('../backup/archive-repository.js');
  return createArchiveRepository(await createBackupStore(config), docker, log, await manifestKey(config, owner));
}

/** The key archive manifests are authenticated with: the configured file, or the state directory's (made by a command that writes). */
async function manifestKey(config: AgentConfig, owner: boolean): Promise<Buffer | undefined> {
  if (!config.manifestKeyFile) return new StateStore(config.stateDir).manifestKey(owner);
  const text = await readFile(config.manifestKeyFile, 'utf8').catch((err: unknown) => {
    // A read-only command (validate, plan, status) does not need it: manifests read unauthenticated.
    if (!owner) return undefined;
    throw new AgentError('CONFIG_INVALID', `cannot read backup.manifestKeyFile ${config.manifestKeyFile}: ${errorMessage(err)}`, { cause: err });
  });
  if (text === undefined) return undefined;
  const key = text.trim();
  if (key.length < 32) throw new AgentError('CONFIG_INVALID', `backup.manifestKeyFile ${config.manifestKeyFile} holds ${key.length} characters: at least 32 are needed (openssl rand -hex 32)`);
  return Buffer.from(key, 'utf8');
}

async function createBackupStore(config: AgentConfig): Promise<BackupStore> {
  if (config.backup.kind === 's3') {
    const { kind: _kind, ...options } = config.backup;
    const { createS3Store } = await import('../backup/store/s3.js');
    return createS3Store(options);
  }
  return createLocalStore((config.backup as { dir: string }).dir);
}

interface Base {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  adapter: DockerPort;
  store: StateStore;
  backups: BackupRepository;
  source: DesiredSource;
  git?: { repo: GitPort; config: GitSourceConfig; verifyTip?: (tip: string) => Promise<string | undefined> };
  /** The host's key for spec hashes; none before a command that changes things first ran. */
  hashKey?: Buffer;
  env(): Promise<Env>;
  secrets(): Promise<string[]>;
  loadCache: LoadCache;
}

/** Wires the ports from the configuration: the only place that picks the adapters. */
async function createBase(config: AgentConfig, overrides: ConfigOverrides, options: RuntimeOptions, source: { offline: boolean; owner: boolean }): Promise<Base> {
  const level = overrides.logLevel ?? process.env.AGENT_LOG_LEVEL ?? options.defaultLogLevel ?? config.logLevel;
  const log = await createLogger(level);
  const clock = systemClock;
  const adapter = createDockerAdapter({
    host: config.docker.host,
    dockerConfigPath: config.docker.configPath,
    onCredentialHelper: (ref, helper) => log.warn({ image: ref, helper }, 'Registry credentials need a credential helper, which the agent does not run; pulling without credentials'),
  });
  const store = new StateStore(config.stateDir);
  const backups = await createBackupRepository(config, adapter, log, source.owner);
  const env = () => loadInterpolationEnv(config);
  const secrets = async () => {
    const values = config.envFile ? Object.values(parseEnvFile(await readFile(config.envFile, 'utf8'))).filter((v) => v.length >= 4) : [];
    addKnownSecrets(values);
    return values;
  };
  const hashKey = await store.specHashKey(source.owner);
  const base: Base = { ...(hashKey ? { hashKey } : {}), config, log, clock, adapter, store, backups, source: createLocalDirSource(config.source.kind === 'dir' ? config.source.path : '.', { renovateConfig: config.source.kind === 'dir' ? config.source.renovateConfig : undefined }), env, secrets, loadCache: {} };
  if (config.source.kind === 'git') {
    const git = config.source;
    const [{ resolveGitCredentials }, { createGitSource }, { GitRepo }] = await Promise.all([import('../source/git/credentials.js'), import('../source/git/git-source.js'), import('../source/git/repo.js')]);
    const { url, credentials } = await resolveGitCredentials(git.url, git.auth);
    const repo = new GitRepo(store.gitDir(), url, git.branch, credentials);
    // Only the trusted public keys: the signing key is loaded by the write runtime, when it makes a revert.
    const signature = git.verify ? await import('../source/git/signature.js') : undefined;
    const trustedKeys = git.verify && signature ? await signature.loadTrustedKeys(git.verify.publicKeyFiles) : undefined;
    const verify = trustedKeys && signature ? (payload: string, sig: string | undefined) => signature.verifyCommitSignature(payload, sig, trustedKeys) : undefined;
    base.source = createGitSource({ repo, path: git.path, renovateConfigPath: git.renovateConfig, clock, offline: source.offline, ...(verify ? { verify, allowRewind: git.verify?.allowRewind === true } : {}) });
    base.git = { repo, config: git };
    if (verify) {
      const { verifyChain } = await import('../source/git/chain.js');
      // A revert is built only on a tip verified from the last verified commit: the agent never signs on top of what it has not verified.
      base.git.verifyTip = async (tip) => {
        const v = await verifyChain(repo, await repo.trustedBase(), tip, { verify, allowRewind: git.verify?.allowRewind === true });
        return v.ok ? undefined : v.reason;
      };
    }
  }
  return base;
}

function assessDepsOf(b: Base, docker: DockerReader): AssessDeps {
  const deps: AssessDeps = { drills: () => b.store.readDocument<Record<string, DrillResult>>('drills'), clock: b.clock, source: b.source, docker, env: b.env, defaultStack: b.config.stack, roots: projectRootsIn(b.config.stateDir), policy: b.config.policy, ...(b.hashKey ? { hashKey: b.hashKey } : {}), profiles: b.config.profiles, composeFiles: b.config.composeFiles, log: b.log, loadCache: b.loadCache };
  if (b.config.reconcile.prune !== undefined) deps.prune = b.config.reconcile.prune;
  return deps;
}

/**
 * The runtime of read-only commands. `offline`: read the last fetched commit instead of
 * fetching: always (`status`), or while an agent process owns the state directory (`plan`,
 * `validate`: the running agent's copy of the repository is never written by another process).
 */
export async function createReadOnlyRuntime(overrides: ConfigOverrides, options: RuntimeOptions & { offline?: 'always' | 'while-an-agent-runs' } = {}): Promise<ReadOnlyRuntime> {
  const config = await loadConfig(overrides);
  const offline = options.offline === 'always' || (options.offline === 'while-an-agent-runs' && (await new StateStore(config.stateDir).agentHolder()) !== undefined);
  const b = await createBase(config, overrides, options, { offline, owner: false });
  const docker = readOnlyDocker(b.adapter);
  return { config: b.config, log: b.log, clock: b.clock, docker, state: readOnlyState(b.store), backups: b.backups, source: b.source, env: b.env, assessDeps: assessDepsOf(b, docker), sourceOffline: offline && b.git !== undefined };
}

/** The runtime of commands that change things. */
export async function createRuntime(overrides: ConfigOverrides, options: RuntimeOptions = {}): Promise<Runtime> {
  const b = await createBase(await loadConfig(overrides), overrides, options, { offline: false, owner: true });
  const { config, log, clock, adapter: docker, store, backups } = b;
  const failpoint = failpointsFromEnv();
  const hooks: RuntimeHooks = {};
  const onBackupComplete = (m: BackupManifest) => hooks.onBackup?.(m);
  const backupDeps = { docker, repo: backups, clock, log, host: config.host, stack: config.stack, failpoint, onBackupComplete };
  let reconcileDeps: Promise<ReconcileDeps> | undefined;
  let notifier: Promise<Notifier | undefined> | undefined;

  const buildReconcileDeps = async (): Promise<ReconcileDeps> => {
    const deps: ReconcileDeps = {
      ...assessDepsOf(b, docker),
      docker,
      state: store,
      concurrency: config.reconcile.concurrency,
      txBackup: (policy) => createTxBackup({ ...backupDeps, stack: '' }, policy, store.journals),
      failpoint,
      gate: (id, opts, signal) => runHealthGate({ docker, clock }, id, opts, signal),
      newTxId: () => newTxId(clock.now()),
      projectFiles: createProjectFiles(projectRootsIn(config.stateDir), (revision) => b.source.project(revision)),
      secrets: b.secrets,
    };
    const git = b.git;
    if (git?.config.revert) {
      const signer = git.config.signing ? await (await import('../source/git/signature.js')).loadCommitSigner(git.config.signing.keyFile, git.config.signing.passphraseFile) : undefined;
      deps.revert = { repo: git.repo, path: git.config.path, renovateConfigPath: git.config.renovateConfig, identity: git.config.author, maxAttempts: git.config.revertAttempts, host: config.host, profiles: config.profiles, composeFiles: config.composeFiles, ...(signer ? { signer } : {}), ...(git.verifyTip ? { verifyTip: git.verifyTip } : {}), ...(git.config.commitContainerOutput ? { commitContainerOutput: true } : {}) };
    }
    return deps;
  };

  return {
    config,
    log,
    clock,
    docker,
    state: store,
    backups,
    source: b.source,
    env: b.env,
    assessDeps: assessDepsOf(b, docker),
    sourceOffline: false,
    failpoint,
    ...(b.git ? { git: b.git.repo } : {}),
    hooks,
    reconcileDeps() {
      reconcileDeps ??= buildReconcileDeps();
      return reconcileDeps;
    },
    operations() {
      const onProgress = terminalProgress();
      return {
        backup: { ...backupDeps, ...(onProgress ? { onProgress } : {}) },
        locks: store.locks,
        journals: store.journals,
        gate: (id, opts) => runHealthGate({ docker, clock }, id, opts),
        lockTimeoutMs: 10 * 60 * 1000,
      };
    },
    async recordDrill(r) {
      const doc = store.document<Record<string, DrillResult>>('drills');
      const all = (await doc.load().catch(() => undefined)) ?? {};
      all[r.service] = r;
      await doc.save(all);
      hooks.onDrill?.(r);
    },
    notifier() {
      notifier ??= (async () => {
        if (!config.notifications || Object.keys(config.notifications.channels).length === 0) return undefined;
        // Loaded only when channels are configured: the SES SDK and nodemailer are large.
        const [{ buildChannels, notificationSettings }, { createNotifier }, { notifierStateIn }] = await Promise.all([import('../notify/config.js'), import('../notify/notifier.js'), import('../notify/notifier-state.js')]);
        const secrets = await b.secrets();
        const channels = await buildChannels(config.notifications, process.env, (p) => readFile(p, 'utf8'), (secret) => secrets.push(secret));
        const settings = notificationSettings(config.notifications);
        return createNotifier({ channels, clock, log, redact: (text) => redactText(text, secrets), reminderIntervalMs: settings.reminderIntervalMs, timeoutMs: settings.timeoutMs, state: notifierStateIn(store.document('notifier')) });
      })();
      return notifier;
    },
    async webhookSecret() {
      const w = config.webhook;
      if (w.secretFile) {
        try {
          return (await readFile(w.secretFile, 'utf8')).replace(/\r?\n$/, '');
        } catch (err) {
          throw new AgentError('CONFIG_INVALID', `cannot read the webhook secret file ${w.secretFile}: ${(err as Error).message}`, { cause: err, data: { file: w.secretFile } });
        }
      }
      if (w.secretEnv) {
        const v = process.env[w.secretEnv];
        if (v === undefined) throw new AgentError('CONFIG_INVALID', `environment variable ${w.secretEnv} (webhook secret) is not set`, { data: { variable: w.secretEnv } });
        return v;
      }
      return undefined;
    },
  };
}

/** The state directory with its reading methods only. */
function readOnlyState(store: StateStore): StateReader {
  return {
    location: store.location,
    load: () => store.load(),
    loadApplied: () => store.loadApplied(),
    readHistory: (limit) => store.readHistory(limit),
    journals: { read: (s) => store.journals.read(s), list: () => store.journals.list() },
    readDocument: (name) => store.readDocument(name),
    agentHolder: () => store.agentHolder(),
    serviceHolder: (s) => store.serviceHolder(s),
  };
}
