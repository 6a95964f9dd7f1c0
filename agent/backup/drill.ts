import { isoTime } from '../core/clock.js';
import { AgentError, errorMessage } from '../core/errors.js';
import { LABELS } from '../core/labels.js';
import type { Artifact, BackupManifest, DrillResult } from '../model/backup.js';
import type { DesiredState } from '../model/desired.js';
import { serviceContainer } from '../observe/observe.js';
import type { BackupDeps } from './engine.js';
import { servicePrefix, totalBytes } from './manifest.js';


// Row counts of every table: each one must be readable after the restore.
const ROW_COUNTS =
  "SELECT n.nspname || '.' || c.relname || '|' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1";

// A scratch server in the container's own file system (no volume, no network, a socket only),
// the dump restored from standard input, then the check. $1: database, $2: query.
const SCRATCH_SERVER = [
  'set -e',
  'D=/tmp/gitops-agent-drill',
  'mkdir -p "$D"',
  'initdb -D "$D/data" -U postgres --auth=trust >"$D/initdb.log" 2>&1 || { cat "$D/initdb.log" >&2; exit 1; }',
  `pg_ctl -D "$D/data" -o "-c listen_addresses='' -k $D -c fsync=off" -w -l "$D/server.log" start >/dev/null || { cat "$D/server.log" >&2; exit 1; }`,
  'psql -h "$D" -U postgres -d postgres -AtX -c "SELECT 1 FROM pg_database WHERE datname = \'$1\'" | grep -q 1 || createdb -h "$D" -U postgres "$1"',
  'pg_restore -h "$D" -U postgres -d "$1" --no-owner --no-privileges --exit-on-error',
  'psql -h "$D" -U postgres -d "$1" -AtX -v ON_ERROR_STOP=1 -c "$2"',
].join('\n');

/**
 * A restore drill of one service: its latest backup restored where nothing runs, and checked.
 * The dump goes into a scratch PostgreSQL of the database service's own image (a container with
 * no network and no volume, removed after) and is queried; volumes and paths are restored into
 * scratch volumes and compared with what the backup holds. What runs is never touched.
 */
export async function drillService(ctx: BackupDeps, desired: DesiredState, service: string, signal?: AbortSignal): Promise<DrillResult> {
  const started = ctx.clock.now();
  const at = isoTime(ctx.clock);
  const spec = desired.services[service]?.agent.backup;
  if (!spec) throw new AgentError('USAGE', `service ${service} has no x-agent.backup block in the desired state`);
  const result: DrillResult = { service, ok: false, at, durationMs: 0, bytes: 0, checks: [] };
  try {
    const [m] = await ctx.repo.list(servicePrefix(ctx.host, desired.stack, service));
    if (!m) throw new AgentError('BACKUP_FAILED', `no backup of ${service} to drill`);
    result.backup = m.id;
    result.backupCreatedAt = m.createdAt;
    result.bytes = totalBytes(m);
    const checks = await ctx.repo.verify(m);
    const bad = checks.find((c) => !c.ok);
    if (bad) throw new AgentError('BACKUP_FAILED', `${bad.file}: ${bad.problem}`);
    for (const a of m.artifacts) {
      if (a.kind === 'postgres-dump') result.checks.push(await drillDump(ctx, desired, m, a, spec.drill?.query, signal));
      else {
        const r = await ctx.repo.drillFiles(m, a, signal);
        if (r.problem) throw new AgentError('BACKUP_FAILED', `${a.file}: ${r.problem}`);
        result.checks.push(`${a.file}: ${r.files} files, ${r.bytes} B restored`);
      }
    }
    result.ok = true;
  } catch (err) {
    result.error = errorMessage(err);
  }
  result.durationMs = ctx.clock.now() - started;
  ctx.log[result.ok ? 'info' : 'error']({ service, backup: result.backup, ok: result.ok, ms: result.durationMs, ...(result.error ? { err: result.error } : {}) }, result.ok ? 'Restore drill passed' : 'Restore drill failed');
  return result;
}

async function drillDump(ctx: BackupDeps, desired: DesiredState, m: BackupManifest, a: Artifact, query: string | undefined, signal?: AbortSignal): Promise<string> {
  const dbService = a.dbService ?? m.service;
  const running = await serviceContainer(ctx.docker, desired.stack, dbService);
  const image = running?.image ?? desired.services[dbService]?.spec.image;
  if (!image) throw new AgentError('BACKUP_FAILED', `no image for the scratch database: service ${dbService} is neither running nor in the desired state`);
  const database = a.database ?? 'postgres';
  const { body, done } = await ctx.repo.open(m, a);
  let output = '';
  let code = -1;
  let stderr = '';
  let read: unknown;
  try {
    const run = await ctx.docker.runStream(
      {
        image,
        entrypoint: ['/bin/sh', '-c', SCRATCH_SERVER],
        argv: ['drill', database, query ?? ROW_COUNTS],
        user: 'postgres',
        mounts: [],
        stdin: body,
        labels: { [LABELS.managed]: 'true', [LABELS.stack]: desired.stack, 'io.gitops-agent.role': 'drill' },
      },
      signal,
    );
    run.stdout.setEncoding('utf8');
    for await (const chunk of run.stdout as AsyncIterable<string>) if (output.length < 1024 * 1024) output += chunk;
    code = await run.wait();
    stderr = run.stderr();
  } finally {
    body.destroy();
    // always: it releases the repository, and kills restic if the scratch server stopped reading
    read = await done().then(
      () => undefined,
      (err: unknown) => err,
    );
  }
  if (code !== 0) throw new AgentError('BACKUP_FAILED', `the dump of ${database} did not restore into a scratch ${image}: exit ${code}: ${stderr.trim().split('\n').slice(-3).join('; ')}${read ? `; reading it failed: ${errorMessage(read)}` : ''}`);
  if (read) throw new AgentError('BACKUP_FAILED', `reading the dump of ${database} failed: ${errorMessage(read)}`);
  const lines = output.trim().split('\n').filter(Boolean);
  if (query !== undefined) {
    if (lines[0] !== 't') throw new AgentError('BACKUP_FAILED', `the drill query on the restored ${database} printed ${JSON.stringify(output.trim().slice(0, 200))}, not t`);
    return `${a.file}: restored into ${database}, the drill query printed t`;
  }
  const rows = lines.reduce((n, l) => n + Number(l.split('|').pop() ?? 0), 0);
  return `${a.file}: restored into ${database}: ${lines.length} tables, ${rows} rows`;
}
