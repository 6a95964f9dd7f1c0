/**
 * The Docker primitives the agent's PostgreSQL backup/restore is built on, checked against a
 * REAL PostgreSQL 15 container (host networking, named volume on PGDATA) on the run's engine:
 * (a) `pg_dump -Fc` through docker exec, stdout streamed to a file -> valid dump;
 * (b) `pg_restore` through docker exec with stdin attached (hijacked connection, half-closed
 *     with end() after the dump) -> rows restored, exit 0; a process that stops reading early
 *     does not hang the client; and the alternative: putArchive the dump into the container,
 *     pg_restore from the file;
 * (c) getArchive of PGDATA on a STOPPED container (entries `data/...`) and putArchive back
 *     on a stopped container -> rows back after start; also into a fresh, empty volume;
 * (e) the same with a dump of ~9 MB (200k rows);
 * (d) a dump streamed into a full local store (small tmpfs) fails with ENOSPC, and pg_dump
 *     (blocked on its full stdout) goes away once the client socket is destroyed.
 */
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Duplex, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { extract, pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTestContainers, waitUntil } from '../harness/containers.js';
import {
  ensurePostgres,
  psql,
  removeTestVolumes,
  rowCount,
  runPostgres,
  seedRows,
  tableChecksum,
  waitForPostgres,
  type PostgresContainer,
  type PostgresImage,
} from '../harness/postgres-fixture.js';
import { uniqueName } from '../harness/ports.js';
import { harness } from '../harness/provided.js';
import { mountTmpfs } from '../harness/tmpfs.js';

const h = harness();
const label = uniqueName('pgbk');
const ROWS = 5000;
const BIG_ROWS = 200_000;
let image: PostgresImage;
let pg: PostgresContainer;
let work: string;
let seeded: string;

// ---------------------------------------------------------------------------------------------
// Copyable helpers (what the agent needs): demultiplex docker's exec stream with backpressure,
// wait for the exec's exit code.

/**
 * Docker's multiplexed exec/attach stream (no TTY): frames of [type, 0, 0, 0, size u32 BE]
 * + payload; type 1 = stdout, 2 = stderr. Pushes stdout downstream (so pipeline() applies
 * backpressure all the way to the socket), keeps the last 64 KiB of stderr.
 */
class DockerDemux extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  stderr = '';

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      const type = this.buf[0];
      const payload = this.buf.subarray(8, 8 + size);
      this.buf = this.buf.subarray(8 + size);
      if (type === 1) this.push(payload);
      else if (type === 2) this.stderr = (this.stderr + payload.toString()).slice(-65536);
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    cb(this.buf.length > 0 ? new Error(`docker stream ended inside a frame (${this.buf.length} bytes left)`) : null);
  }
}

/** The exit code of a finished exec (the stream can end a moment before Running is false). */
async function execExitCode(exec: Docker.Exec): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null) return info.ExitCode;
    if (Date.now() > deadline) throw new Error(`exec ${exec.id} still running`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Run `cmd` in the container, its stdout streamed into `file`. */
async function execToFile(c: Docker.Container, cmd: string[], file: string): Promise<{ exitCode: number; stderr: string }> {
  const exec = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const demux = new DockerDemux();
  await pipeline(stream, demux, createWriteStream(file));
  return { exitCode: await execExitCode(exec), stderr: demux.stderr };
}

/** Run `cmd` in the container; output collected in memory. */
async function execCollect(c: Docker.Container, cmd: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const exec = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const demux = new DockerDemux();
  let stdout = '';
  demux.on('data', (d: Buffer) => (stdout += d.toString()));
  await pipeline(stream, demux);
  return { exitCode: await execExitCode(exec), stdout, stderr: demux.stderr };
}

/**
 * Run `cmd` with `file` on its stdin: AttachStdin + start({ hijack: true, stdin: true }) gives
 * the raw (upgraded) socket. pipeline() ends it after the file: end() = shutdown(SHUT_WR) =
 * EOF on the process's stdin, while its output keeps coming on the read side until it exits.
 * The engine ends the read side as soon as the process has exited, but if the process quit
 * before reading all of its input, it keeps the connection (and our writes) hanging for
 * 1-20 s before an EPIPE: so once the output has ended, destroy the socket. The exit code
 * decides; `inputError` says the process did not take all of the input.
 */
async function execWithStdinFile(
  c: Docker.Container,
  cmd: string[],
  file: string,
): Promise<{ exitCode: number; stdout: string; stderr: string; inputError?: Error }> {
  const exec = await c.exec({ Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const stream: Duplex = await exec.start({ hijack: true, stdin: true });
  const demux = new DockerDemux();
  let stdout = '';
  demux.on('data', (d: Buffer) => (stdout += d.toString()));
  let inputError: Error | undefined;
  const input = pipeline(createReadStream(file), stream).catch((err: Error) => {
    inputError = err;
  });
  try {
    await pipeline(stream, demux);
  } finally {
    stream.destroy();
    await input;
  }
  const exitCode = await execExitCode(exec);
  return inputError ? { exitCode, stdout, stderr: demux.stderr, inputError } : { exitCode, stdout, stderr: demux.stderr };
}

/** A tar (Buffer) holding one file. */
async function tarOf(name: string, content: Buffer, owner = { uid: 0, gid: 0 }, mode = 0o644): Promise<Buffer> {
  const p = pack();
  p.entry({ name, mode, size: content.length, ...owner }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Names (and types) of a tar file's entries. */
async function tarEntries(file: string): Promise<{ name: string; type: string; uid: number; mode: number }[]> {
  const entries: { name: string; type: string; uid: number; mode: number }[] = [];
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    entries.push({ name: header.name, type: header.type ?? 'file', uid: header.uid ?? -1, mode: header.mode ?? 0 });
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(file), ex);
  return entries;
}

const run = promisify(execFile);

/** Relation files of the current database that no relation of pg_class uses. */
const ORPHAN_FILES_SQL = `SELECT count(*) FROM pg_ls_dir('base/' || (SELECT oid FROM pg_database WHERE datname = current_database())) AS f
  WHERE f ~ '^[0-9]+$' AND f::oid NOT IN (SELECT pg_relation_filenode(c.oid) FROM pg_class c WHERE pg_relation_filenode(c.oid) IS NOT NULL)`;

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  const t0 = Date.now();
  image = await ensurePostgres(h);
  const t1 = Date.now();
  work = mkdtempSync(join(tmpdir(), 'gadt-pgbk-'));
  pg = await runPostgres(h.docker, { image: image.pinned, labelValue: label });
  const t2 = Date.now();
  await seedRows(pg.port, 'items', ROWS);
  seeded = await tableChecksum(pg.port, 'items');
  console.log(`[pg-backup] image ${t1 - t0} ms, container up ${t2 - t1} ms, seed ${ROWS} rows ${Date.now() - t2} ms`);
});

afterAll(async () => {
  await removeTestContainers(h.docker, label);
  await removeTestVolumes(h.docker, label);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('PostgreSQL backup primitives through dockerode', () => {
  it('fixture helpers: psql, seedRows, tableChecksum, trust auth without POSTGRES_PASSWORD', async () => {
    expect(image.pinned).toMatch(/\/fixture\/postgres:15\.8@sha256:[0-9a-f]{64}$/);
    expect(await rowCount(pg.port, 'items')).toBe(ROWS);
    expect(seeded).toMatch(/^[0-9a-f]{32}$/);
    // deterministic data: the same seed gives the same checksum
    await seedRows(pg.port, 'items_copy', ROWS);
    expect(await tableChecksum(pg.port, 'items_copy')).toBe(seeded);
    await psql(pg.port, 'DROP TABLE items_copy');
    // no password configured: TCP from the host is trusted, any password is ignored
    expect(await psql(pg.port, 'SELECT current_user', { password: 'whatever' })).toBe('postgres');
    expect(await psql(pg.port, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'")).not.toBe('0');
  });

  let dumpFile = '';

  it('(a) pg_dump -Fc through docker exec, streamed to a file, is a valid dump', async () => {
    dumpFile = join(work, 'db.dump');
    const t0 = Date.now();
    const res = await execToFile(pg.container, ['pg_dump', '-Fc', '-U', 'postgres', '-d', 'postgres'], dumpFile);
    console.log(`[pg-backup] (a) pg_dump ${statSync(dumpFile).size} bytes in ${Date.now() - t0} ms`);
    expect(res).toEqual({ exitCode: 0, stderr: '' });
    expect(readFileSync(dumpFile).subarray(0, 5).toString()).toBe('PGDMP');
    const { stdout } = await run('pg_restore', ['--list', dumpFile]);
    expect(stdout).toMatch(/TABLE DATA public items postgres/);
    expect(stdout).toMatch(/TABLE public items postgres/);
  });

  it('(b) pg_restore through docker exec with stdin attached, ended with end()', async () => {
    await psql(pg.port, 'DELETE FROM items WHERE id % 2 = 0; UPDATE items SET name = name || \'!\'; CREATE TABLE after_dump (x int)');
    expect(await rowCount(pg.port, 'items')).toBe(ROWS / 2);
    const t0 = Date.now();
    const res = await execWithStdinFile(
      pg.container,
      ['pg_restore', '--clean', '--if-exists', '-U', 'postgres', '-d', 'postgres'],
      dumpFile,
    );
    console.log(`[pg-backup] (b) pg_restore via stdin in ${Date.now() - t0} ms: ${JSON.stringify(res)}`);
    expect(res).toEqual({ exitCode: 0, stdout: '', stderr: '' }); // and no inputError
    expect(await tableChecksum(pg.port, 'items')).toBe(seeded);
    // --clean drops only what the dump contains
    expect(await psql(pg.port, "SELECT to_regclass('after_dump') IS NOT NULL")).toBe('t');
    await psql(pg.port, 'DROP TABLE after_dump');
  });

  it('(b) a failing pg_restore with stdin: non-zero exit code and stderr, no hang', async () => {
    const garbage = join(work, 'garbage.bin');
    // 8 MiB: more than the pipe and socket buffers, so the writer sees the process go away
    await pipeline(
      (async function* () {
        for (let i = 0; i < 8; i++) yield Buffer.alloc(1 << 20, 'x');
      })(),
      createWriteStream(garbage),
    );
    const t0 = Date.now();
    const res = await execWithStdinFile(pg.container, ['pg_restore', '-U', 'postgres', '-d', 'postgres'], garbage).catch(
      (e: unknown) => e,
    );
    console.log(`[pg-backup] (b) garbage via stdin in ${Date.now() - t0} ms: ${res instanceof Error ? res.stack : JSON.stringify(res)}`);
    expect(res).toMatchObject({ exitCode: 1, stdout: '' });
    const { stderr, inputError } = res as { stderr: string; inputError?: Error };
    expect(stderr).toMatch(/input file does not appear to be a valid archive/);
    // it stopped reading after the header: the rest could not be written
    expect(inputError).toBeInstanceOf(Error);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('(b\') alternative: putArchive the dump into /tmp, pg_restore from the file', async () => {
    await psql(pg.port, 'DELETE FROM items WHERE id > 100');
    const t0 = Date.now();
    // the file gets the tar header's owner: uid 999 (postgres) so the exec (USER postgres) may
    // delete it from the sticky /tmp afterwards (with uid 0 it can read it but not delete it)
    await pg.container.putArchive(await tarOf('restore.dump', readFileSync(dumpFile), { uid: 999, gid: 999 }), { path: '/tmp' });
    const res = await execCollect(pg.container, [
      'pg_restore', '--clean', '--if-exists', '-U', 'postgres', '-d', 'postgres', '/tmp/restore.dump',
    ]);
    console.log(`[pg-backup] (b') putArchive + pg_restore file in ${Date.now() - t0} ms`);
    expect(res).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(await tableChecksum(pg.port, 'items')).toBe(seeded);
    expect((await execCollect(pg.container, ['rm', '/tmp/restore.dump'])).exitCode).toBe(0);
  });

  it('(c) getArchive of PGDATA on a stopped container, putArchive back on a stopped container', async () => {
    const tarFile = join(work, 'pgdata.tar');
    await pg.container.stop({ t: 30 });
    const t0 = Date.now();
    await pipeline(await pg.container.getArchive({ path: '/var/lib/postgresql/data' }), createWriteStream(tarFile));
    console.log(`[pg-backup] (c) getArchive ${statSync(tarFile).size} bytes in ${Date.now() - t0} ms`);
    const entries = await tarEntries(tarFile);
    const names = entries.map((e) => e.name);
    expect(names[0]).toBe('data/');
    expect(names.every((n) => n === 'data/' || n.startsWith('data/'))).toBe(true);
    expect(names).toContain('data/PG_VERSION');
    expect(names).toContain('data/global/pg_control');
    const root = entries.find((e) => e.name === 'data/');
    expect(root?.uid).toBe(999); // owner postgres, mode 0700 kept in the tar
    expect((root?.mode ?? 0) & 0o777).toBe(0o700);

    // change the data after the snapshot, then put the snapshot back on the stopped container
    await pg.container.start();
    await waitForPostgres(pg.port);
    await psql(pg.port, 'DELETE FROM items WHERE id > 10; CREATE TABLE after_snapshot (x int)');
    await pg.container.stop({ t: 30 });
    const t1 = Date.now();
    await pg.container.putArchive(tarFile, { path: '/var/lib/postgresql' });
    console.log(`[pg-backup] (c) putArchive on stopped container in ${Date.now() - t1} ms`);
    await pg.container.start();
    await waitForPostgres(pg.port);
    expect(await tableChecksum(pg.port, 'items')).toBe(seeded);
    expect(await psql(pg.port, "SELECT to_regclass('after_snapshot') IS NULL")).toBe('t');
    // but putArchive only adds/overwrites: the files written after the snapshot stay behind as
    // orphans (harmless to PostgreSQL, wasted space): restore into an EMPTY volume instead
    expect(Number(await psql(pg.port, ORPHAN_FILES_SQL))).toBeGreaterThan(0);

    // the clean way: a fresh, empty volume in a created (never started) container
    const fresh = await runPostgres(h.docker, { image: image.pinned, labelValue: label, noStart: true });
    const t2 = Date.now();
    await fresh.container.putArchive(tarFile, { path: '/var/lib/postgresql' });
    await fresh.container.start();
    await waitForPostgres(fresh.port);
    console.log(`[pg-backup] (c) fresh volume: putArchive + start + ready in ${Date.now() - t2} ms`);
    expect(await tableChecksum(fresh.port, 'items')).toBe(seeded);
    expect(await psql(fresh.port, ORPHAN_FILES_SQL)).toBe('0');
    const logs = (await fresh.container.logs({ stdout: true, stderr: true })).toString();
    expect(logs).not.toMatch(/initdb|database system was not properly shut down/);
    await fresh.container.stop({ t: 30 });
  });

  let bigDump = '';

  it('(e) a dump of several MB restores through stdin as well', async () => {
    await seedRows(pg.port, 'big', BIG_ROWS);
    const bigSum = await tableChecksum(pg.port, 'big');
    bigDump = join(work, 'big.dump');
    const t0 = Date.now();
    expect(await execToFile(pg.container, ['pg_dump', '-Fc', '-U', 'postgres', '-d', 'postgres'], bigDump)).toEqual({
      exitCode: 0,
      stderr: '',
    });
    const t1 = Date.now();
    await psql(pg.port, 'TRUNCATE big; DROP TABLE items');
    const res = await execWithStdinFile(
      pg.container,
      ['pg_restore', '--clean', '--if-exists', '-U', 'postgres', '-d', 'postgres'],
      bigDump,
    );
    console.log(
      `[pg-backup] (e) ${BIG_ROWS} rows: dump ${statSync(bigDump).size} bytes in ${t1 - t0} ms, restore via stdin in ${Date.now() - t1} ms`,
    );
    expect(res).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(await tableChecksum(pg.port, 'big')).toBe(bigSum);
    expect(await tableChecksum(pg.port, 'items')).toBe(seeded);
  });

  it('(d) a dump streamed into a full local store fails with ENOSPC, and pg_dump goes away', async () => {
    const store = await mountTmpfs(256 * 1024);
    try {
      // plain fs streams first
      await expect(pipeline(createReadStream(bigDump), createWriteStream(join(store.dir, 'plain')))).rejects.toMatchObject({
        code: 'ENOSPC',
      });
      rmSync(join(store.dir, 'plain'));
      // docker exec output into the full store: the pipeline fails and destroys the socket
      const t0 = Date.now();
      const err = await execToFile(
        pg.container,
        ['pg_dump', '-Fc', '-U', 'postgres', '-d', 'postgres'],
        join(store.dir, 'db.dump'),
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ENOSPC' });
      const right = await psql(pg.port, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'");
      console.log(`[pg-backup] (d) ENOSPC after ${Date.now() - t0} ms, pg_dump sessions at that moment: ${right}`);
      // the dump is bigger than every buffer on the way: pg_dump must not stay blocked (and
      // hold its locks); the engine closes its stdout once the client is gone
      await waitUntil(
        'pg_dump to disconnect',
        async () => (await psql(pg.port, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'")) === '0',
        15_000,
      );
      console.log(`[pg-backup] (d) ENOSPC, pg_dump gone after ${Date.now() - t0} ms`);
    } finally {
      await store.unmount();
    }
  });
});
