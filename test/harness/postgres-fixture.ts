/**
 * Helpers for tests with a REAL PostgreSQL 15 (the fixture image of test/harness/postgres.ts),
 * talking to it with the HOST's client binaries (postgresql-client: psql, pg_restore...).
 *
 * How the image behaves (test/harness/postgres/docker-entrypoint.sh):
 * - it listens on 127.0.0.1:$PGPORT only (`listen_addresses=127.0.0.1`), so run it with host
 *   networking and ALWAYS set PGPORT to a free port; its unix socket is
 *   /var/run/postgresql/.s.PGSQL.$PGPORT inside the container;
 * - initdb runs on first start when $PGDATA (/var/lib/postgresql/data) has no PG_VERSION;
 *   the superuser is $POSTGRES_USER (default postgres), database $POSTGRES_DB (default = user);
 * - auth: WITHOUT POSTGRES_PASSWORD, `initdb --auth=trust`: every connection (unix socket and
 *   TCP 127.0.0.1) is trusted, no password needed. WITH POSTGRES_PASSWORD: unix socket trust
 *   (so `docker exec ... pg_dump -U postgres` never needs a password), TCP scram-sha-256 (the
 *   host's psql needs PGPASSWORD: pass `password` below);
 * - processes run as user postgres (uid 999), also inside `docker exec` (the image's USER);
 * - STOPSIGNAL SIGINT (fast clean shutdown), HEALTHCHECK pg_isready every second.
 */
import { spawn } from 'node:child_process';
import type Docker from 'dockerode';
import { TEST_LABEL, waitUntil } from './containers.js';
import { ensurePostgresImage, type PostgresImage } from './postgres.js';
import { freePort, uniqueName } from './ports.js';
import type { Harness } from './provided.js';

export type { PostgresImage } from './postgres.js';

export interface PsqlOptions {
  /** Database, default 'postgres'. */
  db?: string;
  /** Role, default 'postgres'. */
  user?: string;
  /** Only needed when the container was started with POSTGRES_PASSWORD. */
  password?: string;
}

/**
 * The PostgreSQL fixture image in the run's registry (built on the run's engine by the first
 * caller of a run). `pinned` is `<registry>/fixture/postgres:15.8@sha256:...`.
 */
export function ensurePostgres(h: Pick<Harness, 'docker' | 'registryHost'>, tag = '15.8'): Promise<PostgresImage> {
  return ensurePostgresImage(h, { host: h.registryHost }, tag);
}

/**
 * Run `sql` with the host's psql against 127.0.0.1:port (`-At`: unaligned, tuples only; `-X`:
 * no ~/.psqlrc; ON_ERROR_STOP). Resolves with stdout without its trailing newline; rejects
 * with psql's stderr when it exits non-zero. Several statements in one string run as one
 * implicit transaction and the output is the last statement's.
 */
export function psql(port: number, sql: string, opts: PsqlOptions = {}): Promise<string> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-U', opts.user ?? 'postgres', '-d', opts.db ?? 'postgres'];
  args.push('-At', '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql);
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '5', PGAPPNAME: 'gadt-test' };
  delete env.PGPASSWORD;
  delete env.PGSERVICE;
  if (opts.password !== undefined) env.PGPASSWORD = opts.password;
  return new Promise((resolve, reject) => {
    const proc = spawn('psql', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('error', reject);
    proc.once('close', (code) => {
      if (code === 0) resolve(out.replace(/\n$/, ''));
      else reject(new Error(`psql on 127.0.0.1:${port} exited ${code}: ${err.trim()}\nSQL: ${sql.slice(0, 500)}`));
    });
  });
}

/** `"name"` or `"schema"."name"`; only plain identifiers are accepted. */
function ident(table: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) throw new Error(`bad table name ${table}`);
  return table
    .split('.')
    .map((p) => `"${p}"`)
    .join('.');
}

/**
 * Create `table` (dropped first if it exists) with `n` rows of varied, deterministic data:
 * int id, text with quotes/commas/newlines/non-ASCII, numeric, timestamptz, text[], jsonb,
 * bytea, and NULLs. The same (table, n) always gives the same tableChecksum.
 */
export async function seedRows(port: number, table: string, n: number, opts: PsqlOptions = {}): Promise<void> {
  const t = ident(table);
  await psql(
    port,
    `DROP TABLE IF EXISTS ${t};
     CREATE TABLE ${t} (
       id int PRIMARY KEY,
       name text NOT NULL,
       amount numeric(12,2),
       created timestamptz NOT NULL,
       tags text[],
       payload jsonb,
       blob bytea
     );
     INSERT INTO ${t}
     SELECT i,
            'row ' || i || CASE i % 4 WHEN 0 THEN ' "quoted", comma' WHEN 1 THEN E' line\\nbreak' WHEN 2 THEN ' ünïcødé €' ELSE ' plain' END,
            CASE WHEN i % 7 = 0 THEN NULL ELSE round((i * 3.14159)::numeric, 2) END,
            timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes',
            ARRAY['t' || (i % 5), 'k' || (i % 3)],
            jsonb_build_object('i', i, 'even', i % 2 = 0, 'nested', jsonb_build_object('sq', i::bigint * i)),
            decode(md5(i::text), 'hex')
     FROM generate_series(1, ${Math.trunc(n)}) AS i;`,
    opts,
  );
}

/** md5 of the whole table's rows in id order (md5 of '' for an empty table). */
export function tableChecksum(port: number, table: string, opts: PsqlOptions = {}): Promise<string> {
  return psql(port, `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) FROM ${ident(table)} t`, opts);
}

/** Number of rows of `table`. */
export async function rowCount(port: number, table: string, opts: PsqlOptions = {}): Promise<number> {
  return Number(await psql(port, `SELECT count(*) FROM ${ident(table)}`, opts));
}

/** Wait until the server on 127.0.0.1:port answers `SELECT 1` (default up to 60 s). */
export async function waitForPostgres(port: number, opts: PsqlOptions & { timeoutMs?: number } = {}): Promise<void> {
  await waitUntil(
    `PostgreSQL on 127.0.0.1:${port}`,
    async () => (await psql(port, 'SELECT 1', opts)) === '1',
    opts.timeoutMs ?? 60_000,
    100,
  );
}

export interface PostgresContainerOptions {
  /** Image reference, e.g. `(await ensurePostgres(h)).pinned`. */
  image: string;
  /** Port on 127.0.0.1 (PGPORT). Default: a free one. */
  port?: number;
  /** Named volume for /var/lib/postgresql/data. Default: a new labelled volume. */
  volume?: string;
  /** Value of the TEST_LABEL label on the container and the volume it creates. */
  labelValue: string;
  name?: string;
  env?: Record<string, string | number>;
  /** Create only (to putArchive into it first). Default false. */
  noStart?: boolean;
}

export interface PostgresContainer {
  container: Docker.Container;
  name: string;
  port: number;
  volume: string;
}

/**
 * Create (and start, then wait for SQL) a host-network PostgreSQL container with a named
 * volume on its data directory. No init process: postgres handles its signals (SIGINT stop).
 */
export async function runPostgres(docker: Docker, o: PostgresContainerOptions): Promise<PostgresContainer> {
  const port = o.port ?? (await freePort());
  const volume = o.volume ?? uniqueName(`${o.labelValue}-data`);
  if (o.volume === undefined) await docker.createVolume({ Name: volume, Labels: { [TEST_LABEL]: o.labelValue } });
  const name = o.name ?? uniqueName(o.labelValue);
  const env = { ...o.env, PGPORT: port };
  const container = await docker.createContainer({
    name,
    Image: o.image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { [TEST_LABEL]: o.labelValue },
    HostConfig: {
      NetworkMode: 'host',
      RestartPolicy: { Name: 'no' },
      Binds: [`${volume}:/var/lib/postgresql/data`],
    },
  });
  if (!o.noStart) {
    await container.start();
    const password = o.env?.POSTGRES_PASSWORD;
    await waitForPostgres(port, {
      user: o.env?.POSTGRES_USER === undefined ? undefined : String(o.env.POSTGRES_USER),
      password: password === undefined ? undefined : String(password),
    });
  }
  return { container, name, port, volume };
}

/** Remove the volumes carrying TEST_LABEL=labelValue (their containers must be gone). */
export async function removeTestVolumes(docker: Docker, labelValue: string): Promise<void> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${TEST_LABEL}=${labelValue}`] } });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove({ force: true })));
}
