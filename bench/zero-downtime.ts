/**
 * Requests every 10 ms through nginx to a stateless app while it is updated, on one private
 * engine: the agent with start-first, the agent with stop-first, and Debian's docker-compose
 * 1.29 (`up -d`), each its own stack of the same images (the web fixture behind the fixture
 * nginx, which resolves the app's name through Docker's DNS per request). Three scenarios:
 * (a) a good update, (b) a failed update and its rollback, (c) a change of nginx's
 * configuration files only. Failed requests and the longest gap, medians of BENCH_RUNS runs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestEngine } from '../test/harness/engine.js';
import { buildFixtureImages, type FixtureImages } from '../test/harness/images.js';
import { RESOLVING_NGINX_CONF, ensureNginxImage } from '../test/harness/nginx.js';
import { freePort } from '../test/harness/ports.js';
import { startRegistry } from '../test/harness/registry.js';
import { startTraffic, type TrafficReport } from '../test/harness/traffic.js';
import { CLI, median, run, waitAnswer, waitServing } from './lib.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** How long requests go on after the command returns: an old address may still be cached by nginx. */
const TAIL_MS = 1500;

export type Contender = 'agentStartFirst' | 'agentStopFirst' | 'compose';
export interface Figures {
  failed: number;
  requests: number;
  longestGapMs: number;
  slowestMs: number;
  retried: number;
}
export type Scenario = Record<Contender, Figures>;
export interface ZeroDowntimeResult {
  runs: number;
  goodUpdate: Scenario;
  failedUpdate: Scenario;
  nginxConfig: Scenario;
}

const site = (header: string) => `${RESOLVING_NGINX_CONF('http://app:8080').replace('location / {', `location / {\n        add_header X-Site ${header};`)}`;

interface Stack {
  dir: string;
  port: number;
  write(version: string, attempt: string, header: string): void;
  apply(): Promise<void>;
  /** (c): the configuration change as this contender applies it. */
  applyConfig(): Promise<void>;
}

/** The agent's stack: start-first for the app and nginx's configuration reloaded in place, or stop-first and nginx recreated (the agent's behaviour without those keys). */
function agentYaml(o: { name: string; images: FixtureImages; nginx: string; port: number; version: string; attempt: string; order: 'start-first' | 'stop-first' }): string {
  return `name: ${o.name}
services:
  app:
    image: ${o.images[o.version as keyof FixtureImages].pinned}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8080", ATTEMPT: "${o.attempt}"}
    stop_grace_period: 2s
    deploy:
      update_config: {order: ${o.order}, monitor: 1s}
    x-agent:
      policy: auto
${o.order === 'start-first' ? '      drain: 2s\n' : ''}      health: {timeout: 20s}
  nginx:
    image: ${o.nginx}
    ports: ["127.0.0.1:${o.port}:80"]
    volumes: ["./nginx:/etc/nginx/conf.d:ro"]
    depends_on: [app]
    x-agent:
      policy: auto
${o.order === 'start-first' ? '      reload: {command: [nginx, -s, reload]}\n' : ''}      health: {timeout: 15s, stabilization: 1s, probes: [{http: "http://127.0.0.1:${o.port}/", interval: 250ms}]}
`;
}

function composeYaml(o: { images: FixtureImages; nginx: string; port: number; version: string; attempt: string; dir: string }): string {
  return `version: "2.4"
services:
  app:
    image: ${o.images[o.version as keyof FixtureImages].pinned}
    init: true
    environment: {LISTEN: 0.0.0.0, PORT: "8080", ATTEMPT: "${o.attempt}"}
    stop_grace_period: 2s
  nginx:
    image: ${o.nginx}
    ports: ["127.0.0.1:${o.port}:80"]
    volumes: ["${join(o.dir, 'nginx')}:/etc/nginx/conf.d:ro"]
    depends_on: [app]
`;
}

async function measured(port: number, action: () => Promise<void>): Promise<TrafficReport> {
  const traffic = startTraffic(`http://127.0.0.1:${port}/`, 10);
  try {
    await action();
  } finally {
    await new Promise((r) => setTimeout(r, TAIL_MS));
  }
  return traffic.stop();
}

function medianOf(reports: TrafficReport[]): Figures {
  const m = (k: 'failed' | 'requests' | 'longestGapMs' | 'slowestMs' | 'retried') => median(reports.map((r) => r[k]));
  return { failed: m('failed'), requests: m('requests'), longestGapMs: m('longestGapMs'), slowestMs: m('slowestMs'), retried: m('retried') };
}

export async function benchZeroDowntime(log: (s: string) => void): Promise<ZeroDowntimeResult> {
  const engine = await startTestEngine();
  const registry = await startRegistry();
  const root = mkdtempSync(join(tmpdir(), 'bench-zdt-'));
  const stacks: Partial<Record<Contender, Stack>> = {};
  try {
    const images = await buildFixtureImages(engine, registry);
    const nginx = (await ensureNginxImage(engine, registry)).pinned;
    const aenv = { AGENT_LOG_LEVEL: 'warn', AGENT_HOST_NAME: 'bench', AGENT_HTTP_LISTEN: '' };
    const agentStack = (key: Contender, order: 'start-first' | 'stop-first', port: number): Stack => {
      const dir = join(root, key);
      mkdirSync(join(dir, 'nginx'), { recursive: true });
      const state = join(dir, '..', `${key}-state`);
      const apply = async () => {
        const r = await run(process.execPath, [CLI, 'apply', '--source', dir, '--state-dir', state, '--docker-host', engine.dockerHost], aenv);
        // exit 4: the update failed and was rolled back, as scenario (b) means it to
        if (r.code !== 0 && r.code !== 4) throw new Error(`agent apply (${key}) exited ${r.code}: ${r.out.slice(-2000)}`);
      };
      return {
        dir,
        port,
        write: (version, attempt, header) => {
          writeFileSync(join(dir, 'stack.yaml'), agentYaml({ name: `zdt${key.toLowerCase()}`, images, nginx, port, version, attempt, order }));
          writeFileSync(join(dir, 'nginx', 'site.conf'), site(header));
        },
        apply,
        applyConfig: apply,
      };
    };
    stacks.agentStartFirst = agentStack('agentStartFirst', 'start-first', await freePort());
    stacks.agentStopFirst = agentStack('agentStopFirst', 'stop-first', await freePort());
    const cdir = join(root, 'compose');
    mkdirSync(join(cdir, 'nginx'), { recursive: true });
    const cport = await freePort();
    const denv = { DOCKER_HOST: engine.dockerHost, COMPOSE_PROJECT_NAME: 'zdtcompose' };
    const compose = async (args: string[]) => {
      const r = await run('docker-compose', ['-f', join(cdir, 'docker-compose.yml'), ...args], denv);
      if (r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} exited ${r.code}: ${r.out.slice(-2000)}`);
    };
    stacks.compose = {
      dir: cdir,
      port: cport,
      write: (version, attempt, header) => {
        writeFileSync(join(cdir, 'docker-compose.yml'), composeYaml({ images, nginx, port: cport, version, attempt, dir: cdir }));
        writeFileSync(join(cdir, 'nginx', 'site.conf'), site(header));
      },
      apply: () => compose(['up', '-d']),
      // compose does not see a change of a bound file: the operator restarts nginx.
      applyConfig: () => compose(['restart', 'nginx']),
    };
    const contenders = Object.keys(stacks) as Contender[];
    // What each stack runs: the app's version and its ATTEMPT variable, nginx's header.
    const running: Record<Contender, { version: string; attempt: string; header: string }> = Object.fromEntries(contenders.map((c) => [c, { version: '1.0.0', attempt: '0', header: 'v0' }])) as never;
    let attempt = 0;
    for (const c of contenders) {
      stacks[c]!.write('1.0.0', '0', 'v0');
      await stacks[c]!.apply();
      await waitServing(`http://127.0.0.1:${stacks[c]!.port}/`, '1.0.0');
    }

    const reports: Record<'goodUpdate' | 'failedUpdate' | 'nginxConfig', Record<Contender, TrafficReport[]>> = {
      goodUpdate: { agentStartFirst: [], agentStopFirst: [], compose: [] },
      failedUpdate: { agentStartFirst: [], agentStopFirst: [], compose: [] },
      nginxConfig: { agentStartFirst: [], agentStopFirst: [], compose: [] },
    };
    for (let r = 0; r < RUNS; r++) {
      for (const c of contenders) {
        const s = stacks[c]!;
        const now = running[c];
        const url = `http://127.0.0.1:${s.port}/`;
        // (a) a good update of the app
        const next = { ...now, version: now.version === '1.0.0' ? '1.1.0' : '1.0.0', attempt: String(++attempt) };
        s.write(next.version, next.attempt, next.header);
        reports.goodUpdate[c].push(await measured(s.port, async () => {
          await s.apply();
          await waitServing(url, next.version);
        }));
        running[c] = next;
        // (b) a version that crashes at start, rolled back (compose: the operator's `up -d` of the
        // previous version once `docker ps` shows the crash)
        s.write('1.3.0', String(++attempt), next.header);
        reports.failedUpdate[c].push(await measured(s.port, async () => {
          await s.apply();
          if (c === 'compose') {
            await waitExited(engine.dockerHost, 'zdtcompose');
            s.write(next.version, next.attempt, next.header);
            await s.apply();
          }
          await waitServing(url, next.version);
        }));
        // (c) nginx's configuration only: another header; the app as it runs
        const header = `c${r}`;
        s.write(next.version, next.attempt, header);
        reports.nginxConfig[c].push(await measured(s.port, async () => {
          await s.applyConfig();
          await waitAnswer(url, `X-Site ${header}`, (res) => res.headers.get('x-site') === header);
        }));
        running[c] = { ...next, header };
      }
      log(`run ${r + 1}/${RUNS}: ${contenders.map((c) => `${c}: a ${reports.goodUpdate[c][r]!.failed} failed, b ${reports.failedUpdate[c][r]!.failed}, c ${reports.nginxConfig[c][r]!.failed}`).join('; ')}`);
    }
    const scenario = (k: keyof typeof reports): Scenario => ({ agentStartFirst: medianOf(reports[k].agentStartFirst), agentStopFirst: medianOf(reports[k].agentStopFirst), compose: medianOf(reports[k].compose) });
    await compose(['down']).catch(() => undefined);
    return { runs: RUNS, goodUpdate: scenario('goodUpdate'), failedUpdate: scenario('failedUpdate'), nginxConfig: scenario('nginxConfig') };
  } finally {
    await engine.stop();
    await registry.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Until the compose project's app container has exited (the crashing version): what an operator watching it would see. */
async function waitExited(dockerHost: string, project: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await run('docker', ['-H', dockerHost, 'ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=app', '--format', '{{.State}}']);
    if (/exited|restarting/.test(r.out)) return;
    if (Date.now() > deadline) throw new Error(`the crashing app of ${project} did not exit: ${r.out}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
