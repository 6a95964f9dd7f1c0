import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { AgentError } from '../core/errors.js';
import { loadConfig, loadInterpolationEnv, parseEnvFile, type AgentConfig, type ConfigOverrides, type GitSourceConfig } from '../config/config.js';
import { createDockerAdapter } from '../docker/dockerode-adapter.js';
import type { DockerPort } from '../ports/docker.js';
import { runHealthGate } from '../health/gate.js';
import { failpointsFromEnv } from '../core/failpoints.js';
import { newTxId } from '../apply/transaction.js';
import type { LoadCache } from '../reconcile/inspect-desired.js';
import type { ReconcileContext } from '../reconcile/reconcile.js';
import type { ReconcileReport } from '../model/report.js';
import type { BackupManifest } from '../model/backup.js';
import type { JobSpec } from '../model/desired.js';
import type { CertbotResult } from '../schedule/certbot.js';
import type { Notifier } from '../notify/notifier.js';
import { redactText } from '../source/git/credentials.js';
import type { GitRepo } from '../source/git/repo.js';
import { createLocalDirSource } from '../source/local-dir.js';
import type { DesiredSource } from '../ports/source.js';
import { StateStore } from '../state/store.js';
import { createTxBackup } from '../backup/tx-backup.js';
import { createLocalStore } from '../backup/store/local.js';
import type { BackupStore } from '../ports/backup-store.js';
import type { OperationDeps } from '../backup/operations.js';
import { terminalProgress } from './progress.js';

export interface Runtime {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  docker: DockerPort;
  store: StateStore;
  backupStore: BackupStore;
  source: DesiredSource;
  /** Git sources: the agent's copy of the repository. */
  repo?: GitRepo;
  reconcileContext(): Promise<ReconcileContext>;
  /** What backups and restores run with (commands and scheduled jobs). */
  operations(): Promise<OperationDeps>;
  /** The webhook's HMAC secret, when one is configured. */
  webhookSecret(): Promise<string | undefined>;
  /** Observers set by `agent run` (metrics, notifications); empty for one-shot commands. */
  hooks: RuntimeHooks;
  /** The notifier of the configured channels, or undefined when there are none. */
  notifier(): Promise<Notifier | undefined>;
}

export interface RuntimeHooks {
  onBackup?: (m: BackupManifest) => void;
  onReconcile?: (r: ReconcileReport) => void;
  onCertificates?: (job: JobSpec, outcome: { ok: true; result: CertbotResult } | { ok: false; error: string }) => void;
  onBackupJobFailed?: (job: JobSpec, error: string) => void;
  /** Waits for what the observers still have to send (notifications). */
  flush?: () => Promise<void>;
}

/** Field names whose values never reach a log line, whatever code logs them. */
const REDACTED_FIELDS = ['password', 'token', 'secret', 'authorization', 'auth', '*.password', '*.token', '*.secret', '*.authorization', '*.auth', 'headers.authorization'];

/**
 * Structured JSON logs on stderr (fixed messages, data as fields); human-readable lines when
 * stderr is a terminal (AGENT_LOG_FORMAT=json|pretty forces one).
 */
export async function createLogger(level: string): Promise<Logger> {
  const options = { level, base: { name: 'gitops-agent' }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACTED_FIELDS, censor: '[redacted]' } };
  const format = process.env.AGENT_LOG_FORMAT ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (format === 'pretty') {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,name' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** The AWS SDK, isomorphic-git and openpgp are loaded only when configured: each costs 20 MB of memory. */
export async function createBackupStore(config: AgentConfig): Promise<BackupStore> {
  if (config.backup.kind === 's3') {
    const { kind: _kind, ...options } = config.backup;
    const { createS3Store } = await import('../backup/store/s3.js');
    return createS3Store(options);
  }
  return createLocalStore(config.backup.dir);
}

/** Wires the agent from its configuration: the only place that picks the adapters. */
export async function createRuntime(overrides: ConfigOverrides, options: { defaultLogLevel?: string } = {}): Promise<Runtime> {
  const config = await loadConfig(overrides);
  const level = overrides.logLevel ?? process.env.AGENT_LOG_LEVEL ?? options.defaultLogLevel ?? config.logLevel;
  const log = await createLogger(level);
  const clock = systemClock;
  const docker = createDockerAdapter({
    host: config.docker.host,
    dockerConfigPath: config.docker.configPath,
    onCredentialHelper: (ref, helper) => log.warn({ image: ref, helper }, 'Registry credentials need a credential helper, which the agent does not run; pulling without credentials'),
  });
  const store = new StateStore(config.stateDir);
  const backupStore = await createBackupStore(config);
  let source: DesiredSource;
  let repo: GitRepo | undefined;
  let revertSetup: (() => Promise<ReconcileContext['revert']>) | undefined;
  if (config.source.kind === 'git') {
    const git: GitSourceConfig = config.source;
    const [{ resolveGitCredentials }, { createGitSource }, { GitRepo }] = await Promise.all([import('../source/git/credentials.js'), import('../source/git/git-source.js'), import('../source/git/repo.js')]);
    const signature = git.verify || git.signing ? await import('../source/git/signature.js') : undefined;
    const { url, credentials } = await resolveGitCredentials(git.url, git.auth);
    repo = new GitRepo(join(config.stateDir, 'git', 'repo.git'), url, git.branch, credentials);
    const trustedKeys = git.verify && signature ? await signature.loadTrustedKeys(git.verify.publicKeyFiles) : undefined;
    const verify = trustedKeys && signature ? (payload: string, sig: string | undefined) => signature.verifyCommitSignature(payload, sig, trustedKeys) : undefined;
    source = createGitSource({ repo, path: git.path, renovateConfigPath: git.renovateConfig, clock, ...(verify ? { verify } : {}) });
    const gitRepo = repo;
    if (git.revert) {
      revertSetup = async () => ({
        repo: gitRepo,
        path: git.path,
        renovateConfigPath: git.renovateConfig,
        identity: git.author,
        maxAttempts: git.revertAttempts,
        host: config.host,
        ...(git.signing && signature ? { signer: await signature.loadCommitSigner(git.signing.keyFile, git.signing.passphraseFile) } : {}),
      });
    }
  } else {
    source = createLocalDirSource(config.source.path);
  }
  const hooks: RuntimeHooks = {};
  const loadCache: LoadCache = {};
  let notifier: Promise<Notifier | undefined> | undefined;
  const envFileSecrets = async () => (config.envFile ? Object.values(parseEnvFile(await readFile(config.envFile, 'utf8'))).filter((v) => v.length >= 4) : []);
  const onBackupComplete = (m: BackupManifest) => hooks.onBackup?.(m);
  return {
    hooks,
    config,
    log,
    clock,
    docker,
    store,
    backupStore,
    source,
    ...(repo ? { repo } : {}),
    async reconcileContext() {
      const ctx: ReconcileContext = {
        source,
        docker,
        env: await loadInterpolationEnv(config),
        defaultStack: config.stack,
        log,
        store,
        clock,
        concurrency: config.reconcile.concurrency,
        backupFor: (policy) => createTxBackup({ docker, store: backupStore, clock, log, host: config.host, stack: '', failpoint: failpointsFromEnv(), onBackupComplete }, policy, store.journals),
        failpoint: failpointsFromEnv(),
        gate: (id, opts, signal) => runHealthGate({ docker, clock }, id, opts, signal),
        newTxId: () => newTxId(clock.now()),
        secrets: await envFileSecrets(),
        loadCache,
      };
      if (config.reconcile.prune !== undefined) ctx.prune = config.reconcile.prune;
      const revert = await revertSetup?.();
      if (revert) ctx.revert = revert;
      return ctx;
    },
    async operations() {
      const onProgress = terminalProgress();
      return {
        backup: { docker, store: backupStore, clock, log, host: config.host, stack: config.stack, failpoint: failpointsFromEnv(), onBackupComplete, ...(onProgress ? { onProgress } : {}) },
        locks: store.locks,
        journals: store.journals,
        gate: (id, opts) => runHealthGate({ docker, clock }, id, opts),
        lockTimeoutMs: 10 * 60 * 1000,
      };
    },
    notifier() {
      notifier ??= (async () => {
        if (!config.notifications || Object.keys(config.notifications.channels).length === 0) return undefined;
        // Loaded only when channels are configured: the SES SDK and nodemailer are large.
        const [{ buildChannels, notificationSettings }, { createNotifier, createNotifierStateFile }] = await Promise.all([import('../notify/config.js'), import('../notify/notifier.js')]);
        const secrets = await envFileSecrets();
        const channels = await buildChannels(config.notifications, process.env, (p) => readFile(p, 'utf8'), (secret) => secrets.push(secret));
        const settings = notificationSettings(config.notifications);
        return createNotifier({
          channels,
          clock,
          log,
          redact: (text) => redactText(text, secrets),
          reminderIntervalMs: settings.reminderIntervalMs,
          timeoutMs: settings.timeoutMs,
          state: createNotifierStateFile(join(config.stateDir, 'notifier.json')),
        });
      })();
      return notifier;
    },
    async webhookSecret() {
      const w = config.webhook;
      if (w.secretFile) {
        try {
          return (await readFile(w.secretFile, 'utf8')).replace(/\r?\n$/, '');
        } catch (err) {
          throw new AgentError('CONFIG_INVALID', `cannot read the webhook secret file ${w.secretFile}: ${(err as Error).message}`, { cause: err });
        }
      }
      if (w.secretEnv) {
        const v = process.env[w.secretEnv];
        if (v === undefined) throw new AgentError('CONFIG_INVALID', `environment variable ${w.secretEnv} (webhook secret) is not set`);
        return v;
      }
      return undefined;
    },
  };
}
