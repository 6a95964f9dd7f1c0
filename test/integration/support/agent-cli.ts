/**
 * Drives the real agent CLI (dist/, built by `npm test`'s pretest) as a subprocess against
 * the run's private engine, with a stack of its own: each test gets unique names, its own
 * state and desired-state directories, and a free port on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, uniqueName } from '../../harness/ports.js';
import { harness, type Harness } from '../../harness/provided.js';
import type { FixtureVersion } from '../../harness/images.js';
import type { StatusView } from '../../../agent/cli/status-view.js';

export const CLI = resolve(import.meta.dirname, '../../../dist/agent/cli/main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface WebOptions {
  version: FixtureVersion | string;
  /** Use the tag only, no digest (for "tag does not exist"). */
  unpinned?: boolean;
  timeout?: string;
  stabilization?: string;
  restart?: string;
  probes?: string[];
  env?: Record<string, string>;
  extra?: string;
  /** Give the service a named volume backed up before updates (and restored on rollback when set). */
  backup?: { restoreOnRollback: boolean };
}

export class AgentFixture {
  readonly stack = uniqueName('st').replace(/\./g, '-');
  readonly root = mkdtempSync(join(tmpdir(), 'gadt-agent-'));
  readonly sourceDir = join(this.root, 'desired');
  readonly stateDir = join(this.root, 'state');

  /** How the agent finds the desired state: this directory by default, or a Git repository (useGit). */
  sourceArgs: string[] = ['--source', this.sourceDir];

  private constructor(
    readonly port: number,
    /** The engine and registry the agent works with: the run's shared ones unless a test brings its own. */
    readonly h: Harness,
  ) {}

  /** Point the agent at a Git repository instead of the directory; the password goes in a file. */
  useGit(url: string, password: string, extra: string[] = []): void {
    const pwFile = join(this.root, 'git-password');
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    this.sourceArgs = ['--git-url', url, '--git-path', 'desired-state', ...extra];
    this.gitEnv = { AGENT_GIT_USERNAME: 'agent', AGENT_GIT_PASSWORD_FILE: pwFile, AGENT_HOST_NAME: 'test-host' };
  }

  gitEnv: Record<string, string> = { AGENT_HOST_NAME: 'test-host' };

  static async create(h: Harness = harness()): Promise<AgentFixture> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it first)`);
    const f = new AgentFixture(await freePort(), h);
    rmSync(f.sourceDir, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(f.sourceDir, { recursive: true });
    return f;
  }

  image(version: string, unpinned = false): string {
    const img = this.h.images[version as FixtureVersion];
    if (!img) return `${this.h.registryHost}/fixture/web:${version}`;
    return unpinned ? img.ref : img.pinned;
  }

  /** A one-service stack of the fixture web app, listening on this fixture's port. */
  webYaml(o: WebOptions): string {
    const env = { PORT: String(this.port), ...(o.env ?? {}) };
    const probes = (o.probes ?? [`- http: http://127.0.0.1:${this.port}/\n            interval: 250ms`]).map((p) => `          ${p}`).join('\n');
    return [
      `name: ${this.stack}`,
      'services:',
      '  web:',
      `    image: ${this.image(o.version, o.unpinned)}`,
      '    network_mode: host',
      '    init: true',
      `    restart: ${o.restart ?? 'unless-stopped'}`,
      '    stop_grace_period: 2s',
      '    environment:',
      ...Object.entries(env).map(([k, v]) => `      ${k}: "${v}"`),
      ...(o.backup ? ['    volumes: ["data:/data"]'] : []),
      '    x-agent:',
      '      policy: auto',
      ...(o.backup ? [`      backup: {volumes: [data], consistency: live, restoreOnRollback: ${o.backup.restoreOnRollback}}`] : []),
      '      health:',
      `        timeout: ${o.timeout ?? '20s'}`,
      `        stabilization: ${o.stabilization ?? '500ms'}`,
      '        probes:',
      probes,
      o.extra ?? '',
      ...(o.backup ? ['volumes:', '  data: {}'] : []),
    ].join('\n');
  }

  writeDesired(yaml: string, file = 'stack.yaml'): void {
    writeFileSync(join(this.sourceDir, file), yaml);
  }

  args(command: string, extra: string[] = []): string[] {
    return [CLI, ...command.split(' '), ...this.sourceArgs, '--state-dir', this.stateDir, '--docker-host', this.h.dockerHost, ...extra];
  }

  run(command: string, extra: string[] = [], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
    return runNode(this.args(command, extra), { ...this.gitEnv, ...env }, timeoutMs);
  }

  /** Starts a command without waiting: its process id, its output so far, and its end. */
  start(command: string, extra: string[] = [], env: Record<string, string> = {}): { pid: number; output: () => string; done: Promise<CliResult> } {
    let out = '';
    let err = '';
    const child = spawn(process.execPath, this.args(command, extra), { env: { ...process.env, AGENT_LOG_LEVEL: 'info', ...this.gitEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<CliResult>((resolvePromise, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolvePromise({ code, signal, stdout: out, stderr: err }));
    });
    return { pid: child.pid ?? -1, output: () => out + err, done };
  }

  /** Stops a command started with start(): SIGTERM, then waits for it. */
  async stop(started: { done: Promise<CliResult> }): Promise<CliResult> {
    const { spawnSync } = await import('node:child_process');
    spawnSync('pkill', ['-TERM', '-f', this.stateDir]);
    return started.done;
  }

  async status(): Promise<StatusView> {
    const r = await this.run('status', ['--json']);
    if (r.code !== 0) throw new Error(`agent status failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as StatusView;
  }

  /** The page the web service serves, or the error. */
  async page(): Promise<string> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/`, { signal: AbortSignal.timeout(2000) });
      return (await res.text()).trim();
    } catch (err) {
      return `unreachable: ${(err as Error).message}`;
    }
  }

  /** Every container of this stack, running or not. */
  async containers(): Promise<{ id: string; name: string; state: string; image: string }[]> {
    const list = await this.h.docker.listContainers({ all: true, filters: { label: [`io.gitops-agent.stack=${this.stack}`] } });
    return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State, image: c.Image })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Runs a shell command in the running container of the stack, or of one service of it (with a TTY: one output stream). */
  async inService(cmd: string, service?: string): Promise<string> {
    const [c] = (await this.containers()).filter((x) => x.state === 'running' && (service === undefined || x.name === `${this.stack}-${service}-1`));
    if (!c) throw new Error(`no running container${service ? ` of ${service}` : ''} in stack ${this.stack}`);
    const exec = await this.h.docker.getContainer(c.id).exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, Tty: true });
    const stream = await exec.start({ Tty: true });
    const out: Buffer[] = [];
    stream.on('data', (d: Buffer) => out.push(d));
    await new Promise((r) => stream.on('end', r));
    return Buffer.concat(out).toString('utf8').trim();
  }

  async cleanup(): Promise<void> {
    for (const c of await this.containers()) await this.h.docker.getContainer(c.id).remove({ force: true }).catch(() => undefined);
    const vols = await this.h.docker.listVolumes({ filters: { label: [`io.gitops-agent.stack=${this.stack}`] } });
    for (const v of vols.Volumes ?? []) await this.h.docker.getVolume(v.Name).remove().catch(() => undefined);
    // The engine's link-local pool holds a few dozen networks: give each test's back.
    for (const n of await this.h.docker.listNetworks({ filters: { label: [`io.gitops-agent.stack=${this.stack}`] } })) await this.h.docker.getNetwork(n.Id).remove().catch(() => undefined);
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function runNode(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, AGENT_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent ${args[1]} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Polls until `check` returns a value, or fails with the last value seen. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
