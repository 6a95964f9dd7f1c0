/**
 * The agent's container image (Dockerfile, docs/install.md), built and run on the run's engine.
 *
 * Offline: the engine's containers have no route out (no NAT, no DNS), so the image is built
 * the way scripts/build-agent-image.sh --prebuilt does it: `--stage-only` stages this checkout's
 * dist/ and production node_modules/ (pruned offline), and the Dockerfile's `prebuilt` target
 * copies them FROM a local stand-in of node:20-bookworm-slim made from the host's own Node
 * (test/harness/node-base-image.ts). Nothing is pulled; the Dockerfile's default target (npm
 * install inside the build) needs the npm registry and is not run here.
 *
 * Then the image is used as docs/install.md says: host networking, the engine's socket mounted
 * at /var/run/docker.sock, a named volume for the state, the desired state mounted read-only.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { loadConfig } from '../../agent/config/config.js';
import type { StatusView } from '../../agent/cli/status-view.js';
import { TEST_LABEL, removeTestContainers, waitUntil } from '../harness/containers.js';
import { drain } from '../harness/docker-util.js';
import { ensureNodeBaseImage } from '../harness/node-base-image.js';
import { freePort, uniqueName } from '../harness/ports.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

const ROOT = resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const IMAGE = `gadt-local/gitops-agent:${VERSION}-test`;
const LABEL = 'packaging';
const SOURCE = '/srv/desired-state';

let f: AgentFixture;
let docker: Docker;
let stage: string | undefined;
const volume = uniqueName('agent-state');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Split Docker's multiplexed log/attach stream (8-byte frame headers) into stdout and stderr. */
function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    (buf[i] === 2 ? err : out).push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

interface ContainerOptions {
  /** Mount the engine's socket and the state volume (default true). */
  engine?: boolean;
  binds?: string[];
  env?: Record<string, string>;
  name?: string;
  entrypoint?: string[];
  healthcheck?: Docker.ContainerCreateOptions['Healthcheck'];
}

/** A container of the agent image, as docs/install.md runs it. */
function createAgent(cmd: string[], o: ContainerOptions = {}): Promise<Docker.Container> {
  // The suite's permissive operator policy (test-policy-setup.ts), mounted where the agent in the container reads it.
  const policy = process.env.AGENT_POLICY_FILE as string;
  const binds = [...(o.engine === false ? [] : [`${f.h.socketPath}:/var/run/docker.sock`, `${volume}:/var/lib/gitops-agent`]), `${policy}:/etc/gitops-agent-test/policy.yaml:ro`, ...(o.binds ?? [])];
  const env = { AGENT_POLICY_FILE: '/etc/gitops-agent-test/policy.yaml', AGENT_CHECK_TAGS: 'false', ...(o.env ?? {}) };
  return docker.createContainer({
    name: o.name ?? uniqueName('agent'),
    Image: IMAGE,
    Cmd: cmd,
    ...(o.entrypoint ? { Entrypoint: o.entrypoint } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { [TEST_LABEL]: LABEL },
    ...(o.healthcheck ? { Healthcheck: o.healthcheck } : {}),
    HostConfig: { NetworkMode: 'host', Binds: binds },
  });
}

/** `docker run --rm IMAGE cmd...`: its exit code and output. */
async function runAgent(cmd: string[], o: ContainerOptions = {}): Promise<Run> {
  const c = await createAgent(cmd, o);
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const logs = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return { code: StatusCode, ...demux(logs) };
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

/** `docker exec CONTAINER cmd...`: its exit code and output. */
async function execIn(c: Docker.Container, cmd: string[]): Promise<Run> {
  const exec = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  await new Promise<void>((res, rej) => {
    stream.on('end', () => res());
    stream.on('error', rej);
  });
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, ...demux(Buffer.concat(chunks)) };
}

function statusOf(r: Run): StatusView {
  if (r.code !== 0) throw new Error(`agent status failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusView;
}

/** `bash scripts/build-agent-image.sh --stage-only DIR`, then the `prebuilt` target of that context. */
async function buildAgentImage(): Promise<{ baseMs: number; stageMs: number; buildMs: number }> {
  const tb = Date.now();
  const base = await ensureNodeBaseImage(docker);
  const t0 = Date.now();
  // tmpfs when there is one: staging writes ~90 MB of small files
  stage = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'gadt-agent-ctx-'));
  await promisify(execFile)('bash', [join(ROOT, 'scripts/build-agent-image.sh'), '--stage-only', stage, '--skip-build'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  const t1 = Date.now();
  const tar = spawn('tar', ['-C', stage, '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tarErr = '';
  tar.stderr.on('data', (d: Buffer) => (tarErr += d.toString()));
  const tarDone = new Promise<void>((res, rej) => tar.once('exit', (code) => (code === 0 ? res() : rej(new Error(`tar of ${stage} failed (${code}): ${tarErr}`)))));
  const stream = await docker.buildImage(tar.stdout as unknown as NodeJS.ReadableStream, {
    t: IMAGE,
    target: 'prebuilt',
    buildargs: { NODE_IMAGE: base },
    pull: false,
    rm: true,
    forcerm: true,
    version: '1',
  } as Docker.ImageBuildOptions);
  await Promise.all([drain(stream, `build of ${IMAGE}`), tarDone]);
  return { baseMs: t0 - tb, stageMs: t1 - t0, buildMs: Date.now() - t1 };
}

beforeAll(async () => {
  f = await AgentFixture.create();
  docker = f.h.docker;
  const { baseMs, stageMs, buildMs } = await buildAgentImage();
  console.log(`[packaging] node base image ${baseMs} ms; agent image: staging ${stageMs} ms, docker build ${buildMs} ms`);
}, 300_000);

afterAll(async () => {
  await removeTestContainers(docker, LABEL).catch(() => undefined);
  await f?.cleanup();
  await docker?.getVolume(volume).remove().catch(() => undefined);
  if (stage) rmSync(stage, { recursive: true, force: true });
});

it('is the documented image: entrypoint, root, state volume, no AGENT_CONFIG, healthcheck, --version', async () => {
  const info = await docker.getImage(IMAGE).inspect();
  expect(info.Config.Entrypoint).toEqual(['node', '/opt/gitops-agent/dist/agent/cli/main.js']);
  expect(info.Config.Cmd).toEqual(['run']);
  expect(info.Config.User ?? '').toBe('');
  expect(Object.keys(info.Config.Volumes ?? {})).toEqual(['/var/lib/gitops-agent']);
  expect(info.Config.Env).toContain('AGENT_STATE_DIR=/var/lib/gitops-agent');
  expect(info.Config.Env.some((e) => e.startsWith('AGENT_CONFIG='))).toBe(false);
  expect((info.Config as { Healthcheck?: { Test?: string[] } }).Healthcheck?.Test).toEqual(['CMD', 'node', '/opt/gitops-agent/packaging/healthcheck.mjs']);
  expect((info.Config as { StopSignal?: string }).StopSignal).toBe('SIGTERM');

  const v = await runAgent(['--version'], { engine: false });
  expect(v).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  // `agent` is on PATH too (for `docker exec gitops-agent agent status`)
  const w = await runAgent(['--version'], { engine: false, entrypoint: ['agent'] });
  expect(w).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  // only production dependencies went in
  const ls = await runAgent(['ls node_modules; test ! -e node_modules/typescript && test ! -e node_modules/vitest && echo PROD-ONLY'], { engine: false, entrypoint: ['sh', '-c'] });
  expect(ls.stdout).toContain('dockerode');
  expect(ls.stdout).toContain('PROD-ONLY');
});

it('validates a mounted desired-state directory, with file:line:column for errors', async () => {
  f.writeDesired(f.webYaml({ version: '1.0.0' }));
  const ok = await runAgent(['validate', SOURCE], { engine: false, binds: [`${f.sourceDir}:${SOURCE}:ro`] });
  expect(ok.code, ok.stderr).toBe(EXIT.ok);

  const bad = join(f.root, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'stack.yaml'), 'services:\n  web:\n    image: 42\n    restart: sometimes\n');
  const r = await runAgent(['validate', SOURCE], { engine: false, binds: [`${bad}:${SOURCE}:ro`] });
  expect(r.code).toBe(EXIT.invalidDesiredState);
  expect(r.stdout + r.stderr).toContain('stack.yaml:3:12: /services/web/image');
  expect(r.stdout + r.stderr).toContain('stack.yaml:4:14: /services/web/restart');
});

it('ships a valid example configuration: as installed, mounted in the container, and with every option switched on', async () => {
  const example = join(ROOT, 'packaging/config.example.yaml');
  const asIs = await loadConfig({ config: example }, {});
  expect(asIs).toMatchObject({ stateDir: '/var/lib/gitops-agent', source: { kind: 'dir', path: SOURCE }, http: { listen: { host: '127.0.0.1', port: 9180 } } });

  // '#key:' and '#  key:' lines are the settings to switch on; '# text' lines are explanations
  const text = readFileSync(example, 'utf8');
  const all = join(f.root, 'all-options.yaml');
  writeFileSync(all, text.replace(/^#(?=[^\s#]|[ \t]{2,})/gm, ''));
  const full = await loadConfig({ config: all }, {});
  expect(full.source).toMatchObject({ kind: 'git', url: 'https://git.example.org/ops/web-01.git', verify: { publicKeyFiles: ['/etc/gitops-agent/trusted-keys.asc'] } });
  expect(full.backup).toMatchObject({ kind: 's3', bucket: 'acme-backups' });
  expect(Object.keys(full.notifications?.channels ?? {})).toEqual(['ops-mail', 'relay', 'chat']);
  expect(full).toMatchObject({ envFile: '/etc/gitops-agent/secrets.env', webhook: { secretFile: '/etc/gitops-agent/webhook-secret' }, interpolation: { allowEnv: ['GITEA_DOMAIN'] } });
  expect(full.policy).toMatchObject({ origin: all, registries: ['docker.io', 'ghcr.io'], binds: expect.arrayContaining([{ path: '/srv/gitea', readOnly: false }]) });

  // the documented container setup: the file mounted, AGENT_CONFIG pointing at it; its source
  // is /srv/desired-state, where the desired state is mounted
  f.writeDesired(f.webYaml({ version: '1.0.0' }));
  const r = await runAgent(['validate'], {
    engine: false,
    binds: [`${example}:/etc/gitops-agent/config.yaml:ro`, `${f.sourceDir}:${SOURCE}:ro`],
    env: { AGENT_CONFIG: '/etc/gitops-agent/config.yaml' },
  });
  expect(r.code, r.stderr).toBe(EXIT.ok);
  expect(r.stdout).toContain(`${SOURCE}: valid`);
});

it('applies, runs, and `agent status` reads the running agent\'s state from another container and by docker exec', async () => {
  f.writeDesired(f.webYaml({ version: '1.0.0' }));
  const src = [`${f.sourceDir}:${SOURCE}:ro`];

  // one-shot apply, like `docker run --rm ... gitops-agent apply`
  const apply = await runAgent(['apply', '--source', SOURCE], { binds: src });
  expect(apply.code, apply.stderr).toBe(EXIT.ok);
  expect(await f.page()).toBe('1.0.0');

  // the long-running agent; its listener on a free port, so the healthcheck follows it there
  const listenPort = await freePort();
  const agent = await createAgent(['run', '--source', SOURCE, '--interval', '5s'], {
    binds: src,
    name: uniqueName('gitops-agent'),
    env: { AGENT_HTTP_LISTEN: `127.0.0.1:${listenPort}`, AGENT_LOG_LEVEL: 'info' },
    healthcheck: { Interval: 1e9, Timeout: 5e9, StartPeriod: 0, Retries: 3 },
  });
  await agent.start();
  const logs = async (): Promise<string> => {
    const { stdout, stderr } = demux((await agent.logs({ stdout: true, stderr: true })) as unknown as Buffer);
    return stdout + stderr;
  };
  await eventually('the agent to start', async () => (await logs()).includes('Agent started'), 30_000).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${(await logs()).slice(-3000)}`);
  });

  // a change of the mounted directory is picked up (watcher or interval) and applied
  f.writeDesired(f.webYaml({ version: '1.1.0' }));
  await eventually('the update to 1.1.0', async () => (await f.page()) === '1.1.0', 60_000);

  // docker exec: same container, same PID namespace
  const viaExec = await eventually('the 1.1.0 transaction to be recorded', async () => {
    const s = statusOf(await execIn(agent, ['agent', 'status', '--json']));
    // the pass is over when the revision it read is recorded as applied in full
    const done = s.source?.revision !== undefined && s.lastAppliedRevision === s.source.revision;
    return done && s.services[0]?.lastTransaction?.to?.includes(':1.1.0@') && s.services[0]?.inSync ? s : undefined;
  }, 30_000);
  expect(viaExec.agent.runningPid).toBeGreaterThan(0);
  expect(viaExec.agent.stateDir).toBe('/var/lib/gitops-agent');
  expect(viaExec.services[0]?.running?.image).toContain(':1.1.0@');

  // another container on the same volume, read-only: status takes no lock and writes nothing
  const other = statusOf(await runAgent(['status', '--json', '--source', SOURCE], { engine: false, binds: [`${f.h.socketPath}:/var/run/docker.sock`, `${volume}:/var/lib/gitops-agent:ro`, ...src] }));
  expect(other.stack).toBe(f.stack);
  expect(other.services.map((s) => [s.name, s.running?.image, s.inSync])).toEqual(viaExec.services.map((s) => [s.name, s.running?.image, s.inSync]));
  expect(other.lastAppliedRevision).toBe(viaExec.lastAppliedRevision);
  // ...and it did not disturb the agent
  expect((await agent.inspect()).State.Running).toBe(true);

  // a second writer through docker exec is refused: the state directory has one owner
  const second = await execIn(agent, ['agent', 'apply', '--source', SOURCE]);
  expect(second.code, second.stderr).toBe(EXIT.locked);
  // ...and so is one in a second container on the same volume, where the holder's pid (1 in both)
  // means nothing: the lock names the holder's host and the running agent keeps it fresh
  const secondContainer = await runAgent(['apply', '--source', SOURCE], { binds: src });
  expect(secondContainer.code, secondContainer.stderr).toBe(EXIT.locked);
  expect(secondContainer.stderr).toMatch(/another agent process \(pid 1 on /);
  expect(other.agent.runningPid).toBe(1);
  expect((await agent.inspect()).State.Running).toBe(true);
  expect(statusOf(await execIn(agent, ['agent', 'status', '--json'])).agent.runningPid).toBe(1);

  // the image's HEALTHCHECK asks the agent's listener (AGENT_HTTP_LISTEN) for /healthz
  const healthz = await fetch(`http://127.0.0.1:${listenPort}/healthz`).then((r) => r.status, (err: Error) => err.message);
  expect(healthz).toBe(200);
  await waitUntil('the container to be healthy', async () => (await agent.inspect()).State.Health?.Status === 'healthy', 20_000);
  const health = (await agent.inspect()).State.Health;
  expect(health?.Log.at(-1)?.Output).toContain(`http://127.0.0.1:${listenPort}/healthz: 200`);

  // SIGTERM: the agent finishes, releases its lock and exits 0
  await agent.stop({ t: 60 });
  const end = await agent.inspect();
  expect(end.State.ExitCode, (await logs()).slice(-3000)).toBe(0);
  expect(await logs()).toContain('Agent stopped');
  const after = statusOf(await runAgent(['status', '--json', '--source', SOURCE], { binds: src }));
  expect(after.agent.runningPid).toBeUndefined();
  expect(after.services[0]?.running?.image).toContain(':1.1.0@');
});
