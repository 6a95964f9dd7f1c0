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
