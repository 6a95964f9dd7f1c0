/**
 * A Compose file as self-hosters write it, on the real engine: container_name, env_file,
 * relative binds (a folder of the project and a data directory), secrets and configs from a
 * file, the environment and inline content, and Compose's labels, which docker-compose itself
 * reads back (`docker-compose -p <project> ps`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { AgentFixture } from './support/agent-cli.js';

const API_KEY = 'api-key-7f3c9a1e55';
let f: AgentFixture;
let envFile: string;

beforeEach(async () => {
  f = await AgentFixture.create();
  envFile = join(f.stateDir, '..', 'agent.env');
  writeFileSync(envFile, `API_KEY=${API_KEY}\n`, { mode: 0o600 });
  const put = (p: string, content: string) => {
    mkdirSync(join(f.sourceDir, p, '..'), { recursive: true });
    writeFileSync(join(f.sourceDir, p), content);
  };
  put('site/index.txt', 'site v1\n');
  put('secrets/db_password.txt', 'db-pw-from-file\n');
  put('banner.txt', 'banner from the repository\n');
  put('app.env', 'GREETING="hello from env_file"\nPORT=9999\n');
});
afterEach(async () => {
  await f.cleanup();
});

function stack(greeting = ''): string {
  return `name: ${f.stack}
services:
  web:
    image: ${f.image('1.0.0')}
    container_name: ${f.stack}-edge
    init: true
    env_file: [app.env]
    environment: {LISTEN: 0.0.0.0, PORT: "8080"${greeting ? `, GREETING: "${greeting}"` : ''}}
    ports: ["127.0.0.1:${f.port}:8080"]
    volumes: ["./site:/www/site:ro", "./uploads:/www/uploads"]
    secrets: [db_password, {source: api_key, target: api.key, mode: 0400, uid: "1000"}]
    configs: [{source: motd, target: /www/motd.txt}, {source: banner, target: /www/banner.txt}]
    x-agent:
      health:
        timeout: 20s
        stabilization: 500ms
        probes: [{http: "http://127.0.0.1:${f.port}/site/index.txt", interval: 250ms}]
secrets:
  db_password: {file: ./secrets/db_password.txt}
  api_key: {environment: API_KEY}
configs:
  motd: {content: "hello from compose"}
  banner: {file: ./banner.txt}
`;
}

const get = async (path: string) => (await fetch(`http://127.0.0.1:${f.port}${path}`, { signal: AbortSignal.timeout(2000) })).text();

describe('a Compose file as self-hosters write it', () => {
  it('runs with its files, secrets and configs where Compose puts them, and docker-compose sees it', async () => {
    f.writeDesired(stack(), 'compose.yaml');
    const first = await f.run('apply', ['--env-file', envFile]);
    expect(first.code, first.stdout + first.stderr).toBe(EXIT.ok);

    expect(await get('/site/index.txt')).toBe('site v1\n');
    expect(await get('/motd.txt')).toBe('hello from compose');
    expect(await get('/banner.txt')).toBe('banner from the repository\n');
    const c = await f.h.docker.getContainer(`${f.stack}-edge`).inspect();
    expect(c.Config.Labels).toMatchObject({ 'com.docker.compose.project': f.stack, 'com.docker.compose.service': 'web', 'com.docker.compose.container-number': '1', 'com.docker.compose.oneoff': 'False' });
    expect(c.Config.Env).toEqual(expect.arrayContaining(['GREETING=hello from env_file', 'PORT=8080']));
    const sh = (cmd: string) => f.h.docker.getContainer(c.Id).exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, Tty: true }).then(async (e) => {
      const s = await e.start({ Tty: true });
      const out: Buffer[] = [];
      s.on('data', (d: Buffer) => out.push(d));
      await new Promise((r) => s.on('end', r));
      return Buffer.concat(out).toString('utf8').trim();
    });
    expect(await sh('cat /run/secrets/db_password')).toBe('db-pw-from-file');
    expect(await sh('cat /run/secrets/api.key; echo; stat -c "%a %u" /run/secrets/api.key')).toBe(`${API_KEY}\r\n400 1000`);
    expect(await sh('touch /run/secrets/db_password 2>&1 && echo writable || echo read-only')).toContain('read-only');

    // The data directory of the stack: kept when the container is replaced.
    const uploads = join(f.stateDir, 'project-data', f.stack, 'uploads');
    expect(existsSync(uploads)).toBe(true);
    await sh('echo kept > /www/uploads/file.txt');
    f.writeDesired(stack('changed'), 'compose.yaml');
    const second = await f.run('apply', ['--env-file', envFile]);
    expect(second.code, second.stdout + second.stderr).toBe(EXIT.ok);
    expect(await get('/uploads/file.txt')).toBe('kept\n');

    // docker-compose 1.29 reads the labels: the project and its service, running. (1.29 predates
    // top-level name:, environment secrets and inline configs: it gets a file naming the service.)
    const old = join(f.stateDir, '..', 'compose-1.29.yaml');
    writeFileSync(old, `version: "3.7"\nservices:\n  web:\n    image: ${f.image('1.0.0')}\n`);
    const ps = spawnSync('docker-compose', ['-p', f.stack, '-f', old, 'ps'], { env: { ...process.env, DOCKER_HOST: f.h.dockerHost }, encoding: 'utf8' });
    expect(ps.status, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(new RegExp(`${f.stack}-edge\\s.*Up`));

    const status = await f.run('status', ['--json']);
    for (const out of [first.stdout, first.stderr, second.stdout, second.stderr, status.stdout]) expect(out).not.toContain(API_KEY);
  });
});

describe('taking over a running docker compose project', () => {
  it('replaces its containers one by one through transactions, keeps its volumes and data, and leaves the services the desired state does not describe', async () => {
    // What the host ran before: docker-compose 1.29, project named like the stack.
    const old = join(f.stateDir, '..', 'compose-project');
    mkdirSync(old, { recursive: true });
    writeFileSync(
      join(old, 'docker-compose.yml'),
      `version: "3.7"
services:
  web:
    image: ${f.image('1.0.0')}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8080"}
    ports: ["127.0.0.1:${f.port}:8080"]
    volumes: ["data:/www/data"]
  extra:
    image: ${f.image('1.0.0')}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8081"}
volumes:
  data: {}
`,
    );
    const compose = (...args: string[]) => spawnSync('docker-compose', ['-p', f.stack, ...args], { cwd: old, env: { ...process.env, DOCKER_HOST: f.h.dockerHost }, encoding: 'utf8' });
    const up = compose('up', '-d');
    expect(up.status, up.stderr).toBe(0);
    const before = await f.h.docker.getContainer(`${f.stack}_web_1`).inspect();
    const e = await f.h.docker.getContainer(before.Id).exec({ Cmd: ['sh', '-c', 'echo precious > /www/data/file.txt'], AttachStdout: true });
    await new Promise((r) => e.start({}).then((s) => s.on('end', r).resume()));

    f.writeDesired(
      `name: ${f.stack}
services:
  web:
    image: ${f.image('1.1.0')}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8080"}
    ports: ["127.0.0.1:${f.port}:8080"]
    volumes: ["data:/www/data"]
    x-agent:
      health:
        timeout: 20s
        stabilization: 500ms
        probes: [{http: "http://127.0.0.1:${f.port}/", interval: 250ms}]
volumes:
  data: {}
`,
      'compose.yaml',
    );
    const plan = await f.run('plan');
    expect(plan.stdout).toContain('taken over from docker compose');
    const r = await f.run('apply');
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);

    expect(await get('/')).toBe('1.1.0\n');
    expect(await get('/data/file.txt')).toBe('precious\n');
    const names = (await f.h.docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${f.stack}`] } })).map((c) => [c.Names[0]?.slice(1), c.State, c.Labels['io.gitops-agent.managed'] ?? 'compose']).sort();
    // web is the agent's now; extra, which the desired state does not describe, runs on as it was.
    expect(names).toEqual([
      [`${f.stack}-web-1`, 'running', 'true'],
      [`${f.stack}_extra_1`, 'running', 'compose'],
    ]);
    const ps = compose('ps');
    expect(ps.stdout).toMatch(new RegExp(`${f.stack}-web-1\\s.*Up`));
    // What the fixture's cleanup does not know of: the project's own containers, network, volume.
    expect(compose('down', '-v').status).toBe(0);
  });
});
