import { appendFile, readFile } from 'node:fs/promises';
import Docker from 'dockerode';
import { findBackup } from '../backup/catalog.js';
import { DEFAULT_RESTIC_BINARY, buildLocalResticImage } from '../backup/restic/local-image.js';
import type { AgentConfig } from '../config/config.js';
import { dockerConnectOptions } from '../docker/dockerode-adapter.js';
import { totalBytes } from '../backup/manifest.js';
import { type BackupManifest } from '../model/backup.js';
import { backupService, restoreService } from '../backup/operations.js';
import { drillServices } from '../schedule/jobs.js';
import { AgentError, errorMessage } from '../core/errors.js';
import { loadDesiredState, snapshotInput } from '../desired/load.js';
import { projectRootsIn } from '../desired/project-files.js';
import type { DesiredState } from '../model/desired.js';
import { EXIT, ExitError } from './exit-codes.js';
import { formatIssues, shortTime, table } from './format.js';
import { formatBytes } from './progress.js';
import type { ReadOnlyRuntime, Runtime } from './runtime.js';

/** The desired state as the agent would apply it now: backups need its `x-agent.backup` blocks. */
export async function loadDesired(rt: ReadOnlyRuntime): Promise<DesiredState> {
  const snapshot = await rt.source.read();
  const r = loadDesiredState(snapshotInput(snapshot, { env: await rt.env(), defaultStack: rt.config.stack, roots: projectRootsIn(rt.config.stateDir), policy: rt.config.policy, profiles: rt.config.profiles, composeFiles: rt.config.composeFiles, rootLabel: rt.source.location }));
  if (!r.ok) throw new AgentError('DESIRED_INVALID', `the desired state is invalid:\n${formatIssues(r.issues)}`, { data: { issues: r.issues } });
  return r.state;
}

/** `agent backup create [service...]`: every service with an x-agent.backup block when none is named. */
export async function backupCreateCommand(rt: Runtime, services: string[], opts: { json?: boolean }, out: (s: string) => void): Promise<void> {
  const desired = await loadDesired(rt);
  const names = services.length > 0 ? services : Object.values(desired.services).filter((s) => s.agent.backup).map((s) => s.name);
  if (names.length === 0) throw new ExitError(EXIT.usage, 'no service of the desired state has an x-agent.backup block');
  const ops = rt.operations();
  const made: BackupManifest[] = [];
  const failed: string[] = [];
  for (const name of names) {
    try {
      made.push(await backupService(ops, desired, name, 'manual'));
      if (process.stderr.isTTY) process.stderr.write('\n');
    } catch (err) {
      failed.push(`${name}: ${errorMessage(err)}`);
      rt.log.error({ service: name, err: errorMessage(err) }, 'Backup failed');
    }
  }
  if (opts.json) out(JSON.stringify({ backups: made, failed }, null, 2));
  else {
    if (made.length > 0) out(formatManifests(made));
    for (const f of failed) out(`FAILED ${f}`);
  }
  if (failed.length > 0) throw new ExitError(EXIT.updateFailed, `${failed.length} backup(s) failed`);
}

/** `agent backup drill [service...]`: restores each service's latest backup where nothing runs, and checks it. */
export async function backupDrillCommand(rt: Runtime, services: string[], opts: { json?: boolean }, out: (s: string) => void): Promise<void> {
  const desired = await loadDesired(rt);
  if (services.length === 0 && !Object.values(desired.services).some((s) => s.agent.backup)) throw new ExitError(EXIT.usage, 'no service of the desired state has an x-agent.backup block');
  const results = await drillServices({ operations: () => rt.operations(), onDrill: (d) => rt.recordDrill(d) }, desired, services);
  if (opts.json) out(JSON.stringify({ drills: results }, null, 2));
  else out(table(['SERVICE', 'RESULT', 'BACKUP', 'SIZE', 'TIME', 'DETAIL'], results.map((r) => [r.service, r.ok ? 'passed' : 'FAILED', r.backup ?? '-', formatBytes(r.bytes), `${(r.durationMs / 1000).toFixed(1)} s`, r.ok ? r.checks.join('; ') : (r.error ?? '')])));
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) throw new ExitError(EXIT.updateFailed, `${failed.length} restore drill(s) failed`);
}

export async function backupListCommand(rt: ReadOnlyRuntime, opts: { service?: string; json?: boolean }, out: (s: string) => void): Promise<void> {
  const all = await rt.backups.list();
  const shown = all.filter((m) => !opts.service || m.service === opts.service);
  if (opts.json) return out(JSON.stringify(shown, null, 2));
  out(shown.length === 0 ? `no backups in ${rt.backups.location}` : formatManifests(shown));
}

export async function backupVerifyCommand(rt: ReadOnlyRuntime, id: string, opts: { json?: boolean }, out: (s: string) => void): Promise<void> {
  const m = await findBackup(rt.backups, id);
  // restic: the whole repository's data is read back and authenticated
  const checks = await rt.backups.verify(m, { readData: true });
  if (opts.json) out(JSON.stringify({ id, service: m.service, ok: checks.every((c) => c.ok), artifacts: checks }, null, 2));
  else out(table(['ARTIFACT', 'RESULT', 'SIZE', 'PROBLEM'], checks.map((c) => [c.file, c.ok ? 'ok' : 'FAILED', formatBytes(c.bytes), c.problem ?? ''])));
  if (!checks.every((c) => c.ok)) throw new ExitError(EXIT.updateFailed, `backup ${id} failed verification`);
}

export async function restoreCommand(rt: Runtime, id: string, opts: { yes?: boolean; safetyBackup: boolean; json?: boolean; fromHost?: string; acceptUnauthenticated?: boolean }, out: (s: string) => void): Promise<void> {
  const m = await findBackup(rt.backups, id);
  // A shared bucket holds other hosts' backups: one is restored here only when asked by name.
  if (m.host !== rt.config.host && opts.fromHost !== m.host) throw new ExitError(EXIT.usage, `backup ${m.id} was made on host ${m.host}, not on this one (${rt.config.host}): add --from-host ${m.host} to restore it here`);
  // A manifest anyone with write access to the store could have written is not trusted by default.
  const auth = rt.backups.authenticate(m);
  if (auth !== 'ok' && !opts.acceptUnauthenticated) {
    throw new ExitError(EXIT.usage, auth === 'altered' ? `backup ${m.id}: its manifest does not match its authentication code: it was changed after this agent wrote it (or the manifest key changed); check it, then add --accept-unauthenticated to restore it anyway` : `backup ${m.id}: its manifest carries no authentication code this host can check (written by an earlier agent, by a host with another manifest key, or by someone else); check it, then add --accept-unauthenticated to restore it`);
  }
  const desired = await loadDesired(rt);
  if (!opts.yes) throw new ExitError(EXIT.usage, `restoring ${m.service} from ${m.id} (${shortTime(m.createdAt)}) replaces its current data; add --yes to proceed`);
  const r = await restoreService(rt.operations(), desired, m, { safetyBackup: opts.safetyBackup });
  if (opts.json) out(JSON.stringify({ restored: m.id, service: m.service, safetyBackup: r.safety?.id, healthy: r.verdict.ok, ...(r.verdict.ok ? {} : { reason: r.verdict.reason }) }, null, 2));
  else out(`${m.service}: restored from backup ${m.id}${r.safety ? ` (the previous data is in backup ${r.safety.id})` : ''}; health gate: ${r.verdict.ok ? 'passed' : `FAILED: ${r.verdict.reason}`}`);
  if (!r.verdict.ok) throw new ExitError(EXIT.updateFailed, `${m.service} is not healthy after the restore`);
}

function formatManifests(ms: BackupManifest[]): string {
  return table(
    ['ID', 'SERVICE', 'REASON', 'CREATED', 'SIZE', 'CONTENT'],
    ms.map((m) => [m.id, m.service, m.reason, shortTime(m.createdAt), formatBytes(totalBytes(m)), m.artifacts.map((a) => a.file).join(', ')]),
  );
}


/**
 * Builds the restic image from the host's restic binary on the agent's engine and prints its id,
 * the value of `backup.restic.image`; `--write-config` adds it to a configuration file that has
 * no `backup:` section yet (packaging/install.sh does, on a fresh install).
 */
export async function backupResticImageCommand(config: AgentConfig, opts: { binary?: string; writeConfig?: string; json?: boolean }, out: (s: string) => void): Promise<void> {
  const docker = new Docker(dockerConnectOptions(config.docker.host));
  const image = await buildLocalResticImage(docker, opts.binary ? { binary: opts.binary } : {});
  let written = false;
  if (opts.writeConfig) {
    const text = await readFile(opts.writeConfig, 'utf8');
    if (/^backup\s*:/m.test(text)) throw new ExitError(EXIT.usage, `${opts.writeConfig} has a backup: section already: set backup.restic.image: ${image.id} in it by hand`);
    await appendFile(opts.writeConfig, `${text.endsWith('\n') ? '' : '\n'}\n# restic ${image.version} from this host's ${opts.binary ?? DEFAULT_RESTIC_BINARY}, built by \`agent backup restic-image\` (${image.ref})\nbackup:\n  restic:\n    image: ${image.id}\n`);
    written = true;
  }
  if (opts.json) return out(JSON.stringify({ ...image, ...(written ? { config: opts.writeConfig } : {}) }, null, 2));
  out(`${image.ref}: restic ${image.version}, image ${image.id}`);
  out(written ? `added backup.restic.image to ${opts.writeConfig}` : `set in the configuration:\n  backup:\n    restic:\n      image: ${image.id}`);
}
