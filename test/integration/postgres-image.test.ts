/**
 * The PostgreSQL fixture image is a real server: it starts, passes pg_isready, keeps rows
 * written through psql from the host, and shuts down cleanly on `docker stop`.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTestContainers, runContainer, waitForHealth } from '../harness/containers.js';
import { ensurePostgresImage, type PostgresImage } from '../harness/images.js';
import { freePort, uniqueName } from '../harness/ports.js';
import { harness } from '../harness/provided.js';

const h = harness();
const label = uniqueName('pg');
let pg: PostgresImage;

beforeAll(async () => {
  pg = await ensurePostgresImage(h, { host: h.registryHost });
});

afterAll(async () => {
  await removeTestContainers(h.docker, label);
});

describe('PostgreSQL fixture image', () => {
  it('is in the registry under fixture/postgres', async () => {
    expect(pg.ref).toBe(`${h.registryHost}/fixture/postgres:15.8`);
    expect(pg.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // a second call finds it in the registry instead of building again
    expect((await ensurePostgresImage(h, { host: h.registryHost })).digest).toBe(pg.digest);
  });

  it('serves SQL on 127.0.0.1:$PGPORT to the host psql', async () => {
    const port = await freePort();
    const c = await runContainer(h.docker, {
      image: pg.pinned,
      env: { PGPORT: port, POSTGRES_PASSWORD: 'secret', POSTGRES_DB: 'app' },
      labelValue: label,
      init: false, // postgres handles signals itself (STOPSIGNAL SIGINT = fast shutdown)
    });
    await waitForHealth(c, 'healthy', 60_000);

    const psql = (sql: string): string =>
      execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'app', '-tAX', '-c', sql], {
        env: { ...process.env, PGPASSWORD: 'secret', PGCONNECT_TIMEOUT: '5' },
        encoding: 'utf8',
      }).trim();
    psql('CREATE TABLE t (id int PRIMARY KEY, v text)');
    psql("INSERT INTO t VALUES (1, 'one'), (2, 'two')");
    expect(psql('SELECT string_agg(v, \',\' ORDER BY id) FROM t')).toBe('one,two');
    expect(psql('SHOW server_version')).toMatch(/^15\./);

    // pg_isready inside the container, as the agent's health probes might do
    const exec = await c.exec({ Cmd: ['pg_isready', '-h', '127.0.0.1', '-p', String(port)], AttachStdout: true });
    await new Promise<void>((resolve, reject) => {
      exec.start({}, (err, stream) => (err || !stream ? reject(err) : (stream.on('end', resolve), stream.resume())));
    });
    expect((await exec.inspect()).ExitCode).toBe(0);

    await c.stop({ t: 20 });
    expect((await c.inspect()).State.ExitCode).toBe(0);
  });
});
