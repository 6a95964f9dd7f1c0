/**
 * The shape of the reference stack on real components: a real nginx (built offline) proxies by
 * service name to an app that queries a real PostgreSQL by service name, all on the stack's
 * network, reached only through nginx's port published on 127.0.0.1. The desired state comes
 * from a real Git server: an update of each service, a failing one rolled back (and reverted in
 * Git), a configuration-file change of nginx applied, and a broken one rolled back.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { startGitServer, type GitServer } from '../harness/git-server.js';
import { GitWorkspace, OPERATOR } from '../harness/git-repo.js';
import { ensureNginxImage } from '../harness/nginx.js';
import { ensurePostgres } from '../harness/postgres-fixture.js';
import type { PostgresImage } from '../harness/postgres.js';
import { uniqueName } from '../harness/ports.js';
import { AgentFixture } from './support/agent-cli.js';

const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
const DB_PASSWORD = `db-${randomBytes(6).toString('hex')}`;
let server: GitServer;
let f: AgentFixture;
let ws: GitWorkspace;
let pg: PostgresImage;
let pgNext: PostgresImage;
let nginx: PostgresImage;

beforeAll(async () => {
  server = await startGitServer({ auth: { username: 'agent', password: PASSWORD } });
});
afterAll(async () => {
  await server.stop();
});
beforeEach(async () => {
  f = await AgentFixture.create();
  [pg, pgNext, nginx] = [await ensurePostgres(f.h), await ensurePostgres(f.h, '15.9'), await ensureNginxImage(f.h, { host: f.h.registryHost })];
});
afterEach(async () => {
  ws?.cleanup();
  await f.cleanup();
});

const CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "$APP_VERSION $(psql -tAc 'select count(*) from items' 2>&1)"
`;
const NGINX_CONF = (extra = '') => `server {
    listen 80;
    location = /rows {
        proxy_pass http://app:8080/cgi-bin/rows;${extra}
    }
}
`;

function stack(o: { appVersion: string; pgHost?: string; pg?: PostgresImage }): string {
  return `name: ${f.stack}
services:
  db:
    image: ${(o.pg ?? pg).pinned}
    environment: {POSTGRES_USER: app, POSTGRES_PASSWORD: "\${DB_PASSWORD}", POSTGRES_DB: app, LISTEN_ADDRESSES: "*"}
    volumes: [pgdata:/var/lib/postgresql/data]
    x-agent:
      health: {timeout: 60s, stabilization: 1s, probes: [{exec: [pg_isready, -h, 127.0.0.1, -U, app], interval: 500ms}]}
      backup: {postgres: {database: app, user: app}, volumes: [pgdata], restoreOnRollback: true}
  app:
    image: ${pg.pinned}
    entrypoint: [sh, -c, "mkdir -p /tmp/www/cgi-bin && cp /app/rows.cgi /tmp/www/cgi-bin/rows && chmod 755 /tmp/www/cgi-bin/rows && exec busybox httpd -f -p 0.0.0.0:8080 -h /tmp/www"]
    environment: {APP_VERSION: ${o.appVersion}, PGHOST: ${o.pgHost ?? 'db'}, PGUSER: app, PGDATABASE: app, PGPASSWORD: "\${DB_PASSWORD}", PGCONNECT_TIMEOUT: "2"}
    volumes: ["./app:/app:ro"]
    # The image is PostgreSQL's (for psql): its own health check is the server's, not the app's.
    healthcheck: {disable: true}
    depends_on: {db: {condition: service_healthy}}
    x-agent:
      health: {timeout: 15s, stabilization: 1s, probes: [{exec: [psql, -tAc, "select 1"], interval: 500ms, retries: 3}]}
  nginx:
    image: ${nginx.pinned}
    ports: ["127.0.0.1:${f.port}:80"]
    volumes: ["./nginx/conf.d:/etc/nginx/conf.d:ro"]
    depends_on: [app]
    x-agent:
      policy: auto
      health: {timeout: 15s, stabilization: 1s, probes: [{http: "http://127.0.0.1:${f.port}/rows", interval: 250ms}]}
volumes:
  pgdata: {}
`;
}

async function push(files: Record<string, string>, message: string): Promise<string> {
  await ws.pull();
  for (const [p, c] of Object.entries(files)) await ws.write(p, c);
  const sha = await ws.commit(message, { author: OPERATOR });
  await ws.push();
  return sha;
}

const rows = async () => {
  const res = await fetch(`http://127.0.0.1:${f.port}/rows`, { signal: AbortSignal.timeout(3000) });
  return { body: (await res.text()).trim(), header: res.headers.get('x-served-by') };
};

describe('nginx -> app -> PostgreSQL, by service name, from Git', () => {
  it('updates each, rolls back a failing app and a broken nginx configuration, and Git says what runs', async () => {
    const name = uniqueName('stack');
    await server.createRepo(name);
    const url = server.repoUrl(name);
    ws = await GitWorkspace.init(url, server.auth || undefined, { 'desired-state/compose.yaml': stack({ appVersion: 'v1' }), 'desired-state/app/rows.cgi': CGI, 'desired-state/nginx/conf.d/site.conf': NGINX_CONF(), 'README.md': 'test\n' }, 'The stack');
    f.useGit(url, PASSWORD);
    // backups through restic, as the reference deployment configures them
    f.gitEnv.AGENT_BACKUP_RESTIC_IMAGE = f.h.resticImage.pinned;
    // from the agent's environment, as the operator allows it (interpolation.allowEnv)
    const env = { DB_PASSWORD, AGENT_INTERPOLATE_ENV: 'DB_PASSWORD' };
    const apply = async () => {
      const r = await f.run('apply', [], env);
      return { ...r, all: r.stdout + r.stderr };
    };

    const first = await apply();
    expect(first.code, first.all).toBe(EXIT.ok);
    const db = (await f.h.docker.listContainers({ filters: { label: [`com.docker.compose.project=${f.stack}`, 'com.docker.compose.service=db'] } }))[0]!;
    const seed = await f.h.docker.getContainer(db.Id).exec({ Cmd: ['psql', '-U', 'app', '-d', 'app', '-c', 'create table items (id int); insert into items values (1), (2), (3);'], AttachStdout: true, AttachStderr: true });
    await new Promise((r) => seed.start({}).then((s) => s.on('end', r).resume()));
    expect((await rows()).body).toBe('v1 3');
    // Only nginx is published, on 127.0.0.1; the database and the app are reachable by name only inside the network.
    const published = (await f.h.docker.listContainers({ filters: { label: [`com.docker.compose.project=${f.stack}`] } })).flatMap((c) => c.Ports.filter((p) => p.PublicPort).map((p) => `${p.IP}:${p.PublicPort}`));
    expect(published).toEqual([`127.0.0.1:${f.port}`]);

    // An update of the app.
    await push({ 'desired-state/compose.yaml': stack({ appVersion: 'v2' }) }, 'app v2');
    expect((await apply()).code).toBe(EXIT.ok);
    expect((await rows()).body).toBe('v2 3');

    // A failing app (its database is nowhere): rolled back, reverted in Git.
    const bad = await push({ 'desired-state/compose.yaml': stack({ appVersion: 'v3', pgHost: 'nowhere' }) }, 'app v3');
    const failed = await apply();
    expect(failed.code, failed.all).toBe(EXIT.updateFailed);
    expect((await rows()).body).toBe('v2 3');
    await ws.pull();
    expect((await ws.log(1))[0]?.body).toContain(`Reverts: ${bad}`);
    expect(ws.read('desired-state/compose.yaml')).toContain('APP_VERSION: v2');

    // An update of PostgreSQL: backed up through restic first (dump and volume); its data is kept.
    await push({ 'desired-state/compose.yaml': stack({ appVersion: 'v2', pg: pgNext }) }, 'postgres 15.9');
    const upgraded = await apply();
    expect(upgraded.code, upgraded.all).toBe(EXIT.ok);
    expect((await rows()).body).toBe('v2 3');
    const listed = await f.run('backup list', ['--json'], env);
    const backups = JSON.parse(listed.stdout) as { service: string; reason: string; format: string; image: string; artifacts: { file: string; snapshot: string }[] }[];
    expect(backups.map((b) => [b.service, b.reason, b.format, b.image])).toEqual([['db', 'update', 'restic', pg.pinned]]);
    expect(backups[0]?.artifacts.map((a) => a.file)).toEqual(['postgres.dump', 'volume-pgdata']);

    // A configuration change of nginx, through Git: applied.
    await push({ 'desired-state/nginx/conf.d/site.conf': NGINX_CONF('\n        add_header X-Served-By agent;') }, 'nginx: say who served');
    const configured = await apply();
    expect(configured.code, configured.all).toBe(EXIT.ok);
    expect(await rows()).toEqual({ body: 'v2 3', header: 'agent' });

    // A broken configuration: nginx refuses it at start, rolled back to the previous files.
    const broken = await push({ 'desired-state/nginx/conf.d/site.conf': NGINX_CONF('\n        proxy_pas http://app:8080/;') }, 'nginx: typo');
    const refused = await apply();
    expect(refused.code, refused.all).toBe(EXIT.updateFailed);
    expect(await rows()).toEqual({ body: 'v2 3', header: 'agent' });
    await ws.pull();
    expect((await ws.log(1))[0]?.body).toContain(`Reverts: ${broken}`);
    expect(ws.read('desired-state/nginx/conf.d/site.conf')).toContain('add_header X-Served-By agent;');
    const settled = await apply();
    expect(settled.code, settled.all).toBe(EXIT.ok);
    expect(settled.stdout).toContain('no-op');
    for (const out of [first.all, failed.all, refused.all]) expect(out).not.toContain(DB_PASSWORD);
  });
});
