#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { AgentError, errorMessage } from '../core/errors.js';
import { loadConfig, type ConfigOverrides } from '../config/config.js';
import { formatIssues } from './format.js';
import { applyCommand } from './cmd-apply.js';
import { planCommand } from './cmd-plan.js';
import { runCommand } from './cmd-run.js';
import { statusCommand } from './cmd-status.js';
import { validateCommand } from './cmd-validate.js';
import { backupCreateCommand, backupDrillCommand, backupListCommand, backupResticImageCommand, backupVerifyCommand, restoreCommand } from './cmd-backup.js';
import { EXIT, ExitError, exitCodeFor } from './exit-codes.js';
import { createReadOnlyRuntime, createRuntime } from './runtime.js';
import type { ValidationIssue } from '../model/issues.js';

const version = readVersion();
const out = (s: string) => process.stdout.write(`${s}\n`);

/** The package version, from package.json found above this file (dist/agent/cli or agent/cli). */
function readVersion(): string {
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version: string }).version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

function shutdownSignals(): { signal: AbortSignal; txSignal: AbortSignal } {
  const soft = new AbortController();
  const hard = new AbortController();
  const onSignal = (name: string) => {
    if (!soft.signal.aborted) {
      process.stderr.write(`${name}: finishing the transaction in flight (send again to stop now)\n`);
      soft.abort(new AgentError('ABORTED', `stopped by ${name}`));
    } else {
      hard.abort(new AgentError('ABORTED', `stopped by ${name}`));
    }
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  return { signal: soft.signal, txSignal: hard.signal };
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file (YAML); env AGENT_CONFIG')
    .option('--state-dir <dir>', 'state directory; env AGENT_STATE_DIR (default /var/lib/gitops-agent)')
    .option('--source <dir>', 'desired-state directory; env AGENT_SOURCE_DIR (default ./desired-state)')
    .option('--git-url <url>', 'desired state from this Git repository (HTTP(S)); env AGENT_GIT_URL')
    .option('--git-branch <branch>', 'tracked branch (default main); env AGENT_GIT_BRANCH')
    .option('--git-path <path>', 'desired-state directory in the repository (default desired-state); env AGENT_GIT_PATH')
    .option('--stack <name>', 'stack name when the desired state has no `name:`; env AGENT_STACK')
    .option('--profile <name>', 'activate a Compose profile (repeatable); env AGENT_PROFILES or COMPOSE_PROFILES', (v: string, all: string[] = []) => [...all, v])
    .option('-f, --file <name>', 'a Compose file of the project, in order (repeatable, like docker compose -f); env AGENT_COMPOSE_FILES or COMPOSE_FILE', (v: string, all: string[] = []) => [...all, v])
    .option('--docker-host <url>', 'Docker engine, unix:///path or tcp://127.0.0.1:port; env DOCKER_HOST')
    .option('--env-file <file>', 'KEY=VALUE file for ${VAR} in the desired state; env AGENT_ENV_FILE')
    .option('--log-level <level>', 'trace, debug, info, warn, error; env AGENT_LOG_LEVEL');
}

function overrides(o: Record<string, unknown>): ConfigOverrides {
  const pickString = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const r: ConfigOverrides = {};
  for (const k of ['config', 'stateDir', 'source', 'gitUrl', 'gitBranch', 'gitPath', 'stack', 'dockerHost', 'interval', 'logLevel', 'envFile', 'listen'] as const) {
    const v = pickString(k);
    if (v !== undefined) r[k] = v;
  }
  if (typeof o.prune === 'boolean') r.prune = o.prune;
  if (Array.isArray(o.profile)) r.profiles = o.profile as string[];
  if (Array.isArray(o.file)) r.composeFiles = o.file as string[];
  return r;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('agent')
    .description('GitOps reconciler for Docker hosts: applies the desired state, with a health gate and automatic rollback.')
    .version(version)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  common(program.command('run').description('reconcile continuously: on start, on every change, and at each interval'))
    .option('--interval <duration>', 'resync (poll) interval, e.g. 60s; env AGENT_INTERVAL')
    .option('--listen <host:port>', "HTTP listener for the webhook (default 127.0.0.1:9180, '' for none); env AGENT_HTTP_LISTEN")
    .addOption(new Option('--prune', 'remove containers of services no longer desired').default(undefined))
    .action(async (o) => runCommand(await createRuntime(overrides(o)), shutdownSignals()));

  common(program.command('apply').description('reconcile once and exit'))
    .option('--dry-run', 'print the plan, change nothing')
    .option('--now [services...]', 'apply updates now, even outside their maintenance windows (all services, or those named)')
    .option('--json', 'print the result as JSON')
    .addOption(new Option('--prune', 'remove containers of services no longer desired').default(undefined))
    .action(async (o) => applyCommand(await createRuntime(overrides(o), { defaultLogLevel: 'info' }), { dryRun: o.dryRun, json: o.json, now: o.now }, out, shutdownSignals()));

  common(program.command('plan').description('print what a reconcile would change, and why'))
    .option('--json', 'print the plan as JSON')
    .option('--detailed-exitcode', `exit ${EXIT.changesPending} when there are changes`)
    .addOption(new Option('--prune', 'plan removals of services no longer desired').default(undefined))
    .action(async (o) => planCommand(await createReadOnlyRuntime(overrides(o), { defaultLogLevel: 'warn', offline: 'while-an-agent-runs' }), { json: o.json, detailedExitcode: o.detailedExitcode }, out));

  common(program.command('validate').description('check the desired state against the schema and its own consistency'))
    .argument('[dir]', 'directory to validate instead of the configured source')
    .option('--json', 'print the result as JSON')
    .option('--allow-unset', "report unset ${VAR} as warnings, taken as empty (a pull request's CI, without the host's secrets)")
    // An explicit directory wins over every configured source, as --source does (Git settings included).
    .action(async (dir: string | undefined, o) => validateCommand(await createReadOnlyRuntime({ ...overrides(o), ...(dir ? { source: dir } : {}) }, { defaultLogLevel: 'warn', offline: 'while-an-agent-runs' }), { dir, json: o.json, allowUnset: o.allowUnset === true }, out));

  common(program.command('status').description('show what runs, what is desired, and what happened'))
    .option('--json', 'print the status as JSON')
    .action(async (o) => statusCommand(await createReadOnlyRuntime(overrides(o), { defaultLogLevel: 'error', offline: 'always' }), { json: o.json }, version, out));

  const backup = program.command('backup').description('back up, list and verify backups');
  common(backup.command('create').description('back up services now (default: every service with x-agent.backup)'))
    .argument('[services...]', 'services to back up')
    .option('--json', 'print the result as JSON')
    .action(async (services: string[], o) => backupCreateCommand(await createRuntime(overrides(o), { defaultLogLevel: 'warn' }), services, { json: o.json }, out));
  common(backup.command('drill').description("restore each service's latest backup into a throwaway container and volume, and check it (what runs is not touched)"))
    .argument('[services...]', 'services to drill (default: every service with x-agent.backup)')
    .option('--json', 'print the results as JSON')
    .action(async (services: string[], o) => backupDrillCommand(await createRuntime(overrides(o), { defaultLogLevel: 'warn' }), services, { json: o.json }, out));
  common(backup.command('list').description('list complete backups in the store'))
    .option('--service <name>', 'only this service')
    .option('--json', 'print the list as JSON')
    .action(async (o) => backupListCommand(await createReadOnlyRuntime(overrides(o), { defaultLogLevel: 'warn' }), { service: o.service, json: o.json }, out));
  common(backup.command('verify').description('re-read a backup and check every checksum and archive'))
    .argument('<id>', 'backup id (see backup list)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, o) => backupVerifyCommand(await createReadOnlyRuntime(overrides(o), { defaultLogLevel: 'warn' }), id, { json: o.json }, out));
  common(backup.command('restic-image').description("build the restic image from this host's restic binary (Debian's restic) on the engine, and print its id for backup.restic.image"))
    .option('--binary <path>', 'the restic binary (default /usr/bin/restic)')
    .option('--write-config <file>', 'add backup.restic.image to this configuration file (one without a backup: section)')
    .option('--json', 'print the result as JSON')
    .action(async (o) => backupResticImageCommand(await loadConfig(overrides(o)), { binary: o.binary, writeConfig: o.writeConfig, json: o.json }, out));
  common(program.command('restore').description("restore a service's data from a backup (stops it, restores, starts it, health gate)"))
    .argument('<id>', 'backup id (see backup list)')
    .option('--yes', 'do it: the current data is replaced')
    .option('--no-safety-backup', 'do not back up the current data first')
    .option('--from-host <host>', "restore a backup another host made (a shared store): that host's name")
    .option('--accept-unauthenticated', "restore an archive whose manifest this host cannot authenticate (an earlier agent's, another host's key)")
    .option('--json', 'print the result as JSON')
    .action(async (id: string, o) => restoreCommand(await createRuntime(overrides(o), { defaultLogLevel: 'warn' }), id, { yes: o.yes, safetyBackup: o.safetyBackup !== false, json: o.json, ...(o.fromHost ? { fromHost: o.fromHost } : {}), ...(o.acceptUnauthenticated ? { acceptUnauthenticated: true } : {}) }, out));

  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof ExitError) {
      if (err.message) process.stderr.write(`agent: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof AgentError && err.code === 'DESIRED_INVALID' && Array.isArray(err.data.issues)) process.stderr.write(`${formatIssues(err.data.issues as ValidationIssue[])}\n`);
    process.stderr.write(`agent: ${errorMessage(err)}${err instanceof AgentError ? ` [${err.code}]` : ''}\n`);
    if (!(err instanceof AgentError) && err instanceof Error && process.env.AGENT_DEBUG) process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}

process.exitCode = await main(process.argv);
// Open handles (a watcher that failed to close, a socket) must not keep a finished command alive.
setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
