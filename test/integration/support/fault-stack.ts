/**
 * A stack for fault tests: PostgreSQL holding real rows and the web fixture (which depends on
 * it), on an engine and a registry of the test's own (so that a test may restart the one and
 * stop the other), the desired state in a Git repository, webhook notifications to a local
 * receiver, and backups to a local store on a small tmpfs (so that a test can fill the disk).
 * Tests start `agent run` processes against it and check every fault the same way: settle().
 */
import { execFile } from 'node:child_process';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createHmac, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { LABELS } from '../../../agent/core/labels.js';
import type { AgentEvent, AgentEventType } from '../../../agent/notify/events.js';
import type { StatusView } from '../../../agent/cli/status-view.js';
import type { TransactionRecord } from '../../../agent/model/records.js';
import { buildImage, pullImage, pushImage } from '../../harness/docker-util.js';
import { startTestEngine, type TestEngine } from '../../harness/engine.js';
import { startGitServer, type GitServer } from '../../harness/git-server.js';
import { GitWorkspace, RENOVATE, type LogEntry } from '../../harness/git-repo.js';
import { ensurePostgres, rowCount, seedRows, tableChecksum, waitForPostgres } from '../../harness/postgres-fixture.js';
import { POSTGRES_REPOSITORY, type PostgresImage } from '../../harness/postgres.js';
import { freePort, uniqueName } from '../../harness/ports.js';
import { harness, harnessOn } from '../../harness/provided.js';
import { startRegistry, type TestRegistry } from '../../harness/registry.js';
import { mountTmpfs, type TmpfsMount } from '../../harness/tmpfs.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../harness/webhook-receiver.js';
import { AgentFixture, eventually, type CliResult } from './agent-cli.js';

export interface WebSpec {
  version: string;
  stabilization?: string;
  timeout?: string;
  /** Path of the x-agent http probe (default `/`). */
  probePath?: string;
  env?: Record<string, string>;
}
export interface DbSpec {
  image: string;
  /** The stack's `x-agent.backups.retention.keep` (default 2). */
  keep?: number;
  stabilization?: string;
  env?: Record<string, string>;
  entrypoint?: string[];
}
export interface StackSpec {
  web: WebSpec;
  db: DbSpec;
}
export type StackChange = { web?: Partial<WebSpec>; db?: Partial<DbSpec> };

export const TABLE = 'items';
const ROWS = 5000;
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
const RENOVATE_JSON = `${JSON.stringify({ enabledManagers: ['docker-compose'], packageRules: [] }, null, 2)}\n`;

/** The last transaction of a service as `agent status --json` shows it. */
export function lastTx(s: StatusView, service: string): TransactionRecord | undefined {
  return s.services.find((x) => x.name === service)?.lastTransaction;
}

/** The secret of the agent's webhook in the fault suite: a push is announced at once, as a forge does. */
const HOOK_SECRET = randomBytes(16).toString('hex');

/**
 * One `agent run` process; alive until stopped, killed, or crashed. It polls every 2 s and
 * listens for the webhook, which every push of the suite calls.
 */
export class AgentProcess {
  private readonly p: ReturnType<AgentFixture['start']>;
  result: CliResult | undefined;

  constructor(
    f: AgentFixture,
    env: Record<string, string>,
    readonly hookPort: number,
  ) {
    this.p = f.start('run', ['--interval', '2s', '--listen', `127.0.0.1:${hookPort}`], { AGENT_WEBHOOK_SECRET_ENV: 'FAULT_HOOK_SECRET', FAULT_HOOK_SECRET: HOOK_SECRET, ...env });
    void this.p.done.then((r) => (this.result = r));
  }

  /** A signed push event for the branch: the agent syncs now instead of at its next poll. */
  async announcePush(): Promise<void> {
    if (!this.alive) return;
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const signature = createHmac('sha256', HOOK_SECRET).update(body).digest('hex');
    // The agent may be starting or paused at a failpoint: the poll takes over then.
    await fetch(`http://127.0.0.1:${this.hookPort}/hooks/git`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gitea-signature': signature }, body, signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  }

  get pid(): number {
    return this.p.pid;
  }
  get alive(): boolean {
    return this.result === undefined;
  }
  output(): string {
    return this.p.output();
  }
  /** The end of the process, e.g. one killed by a failpoint. */
  done(): Promise<CliResult> {
    return this.p.done;
  }
  /** SIGTERM (let the transaction in flight finish) or SIGKILL, then its end. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<CliResult> {
    if (this.alive) process.kill(this.pid, signal);
    return this.p.done;
  }
}

export class FaultStack {
  readonly dbPort: number;
  readonly pg: { current: PostgresImage; next: PostgresImage };
  /** The spec Git names and that runs; moved on by accept() after an update that succeeded. */
  good: StackSpec;
  rows = { count: 0, checksum: '' };
  agent: AgentProcess | undefined;
  /** A clone of the desired-state repository, to commit as Renovate would. */
  ws!: GitWorkspace;
  /** Where the agent keeps its configuration (notifications). */
  private readonly config: string;
  /** The backup store of every agent command from now on: the local store on the tmpfs unless set. */
  storeEnv: Record<string, string>;

  private constructor(
    /** The agent's HTTP listener (the webhook). */
    readonly hookPort: number,
    readonly f: AgentFixture,
    readonly engine: TestEngine,
    readonly registry: TestRegistry,
    readonly git: GitServer,
    readonly hooks: WebhookReceiver,
    readonly store: TmpfsMount,
    pg: { current: PostgresImage; next: PostgresImage },
    dbPort: number,
  ) {
    this.pg = pg;
    this.dbPort = dbPort;
    this.good = { web: { version: '1.0.0' }, db: { image: pg.current.pinned } };
    this.config = join(f.root, 'config.yaml');
    writeFileSync(this.config, `notifications:\n  channels:\n    ops:\n      webhook: {url: "${hooks.url}/events", format: json}\n`);
    this.storeEnv = { AGENT_BACKUP_DIR: store.dir };
  }

  /** Environment of every agent command: configuration, backup store. */
  get env(): Record<string, string> {
    return { AGENT_CONFIG: this.config, ...this.storeEnv };
  }

  /**
   * Engine, registry (seeded with the run's fixture images), PostgreSQL 15.8 and a "15.9" built
   * on it, Git server and repository, receiver, store; then the stack deployed by `agent apply`
   * and the table seeded.
   */
  static async start(): Promise<FaultStack> {
    const shared = harness();
    await ensurePostgres(shared);
    const parts = await Promise.allSettled([startTestEngine(), startRegistry({ seedFrom: shared.registryDir }), startGitServer({ auth: { username: 'agent', password: PASSWORD } }), startWebhookReceiver(), mountTmpfs(128 * 1024 * 1024)]);
    const [engine, registry, git, hooks, store] = parts.map((p) => (p.status === 'fulfilled' ? p.value : undefined)) as [TestEngine, TestRegistry, GitServer, WebhookReceiver, TmpfsMount];
    const failed = parts.find((p) => p.status === 'rejected');
    if (failed) {
      await Promise.allSettled([engine?.stop(), registry?.stop(), git?.stop(), hooks?.close(), store?.unmount()]);
      throw (failed as PromiseRejectedResult).reason;
    }
    const f = await AgentFixture.create(harnessOn(engine, registry));
    const pg = { current: await postgresTag(engine, registry, '15.8'), next: await postgresTag(engine, registry, '15.9') };
    const repo = uniqueName('faults');
    await git.createRepo(repo);
    const url = git.repoUrl(repo);
    f.useGit(url, PASSWORD);
    const stack = new FaultStack(await freePort(), f, engine, registry, git, hooks, store, pg, await freePort());
    stack.ws = await GitWorkspace.init(url, git.auth || undefined, { 'desired-state/stack.yaml': stack.yaml(stack.good), 'renovate.json': RENOVATE_JSON }, 'Deploy PostgreSQL and web');
    const r = await f.run('apply', [], stack.env, 300_000);
    if (r.code !== 0) throw new Error(`first deploy failed (${r.code}): ${r.stdout}${r.stderr}`);
    await waitForPostgres(stack.dbPort);
    await seedRows(stack.dbPort, TABLE, ROWS);
    stack.rows = { count: await rowCount(stack.dbPort, TABLE), checksum: await tableChecksum(stack.dbPort, TABLE) };
    return stack;
  }

  yaml(s: StackSpec): string {
    const env = (e: Record<string, string>) => Object.entries(e).map(([k, v]) => `      ${k}: "${v}"`);
    const probe = `http://127.0.0.1:${this.f.port}${s.web.probePath ?? '/'}`;
    return [
      `name: ${this.f.stack}`,
      'x-agent:',
      `  backups: {retention: {keep: ${s.db.keep ?? 2}}}`,
      'services:',
      '  db:',
      `    image: ${s.db.image}`,
      '    network_mode: host',
      '    restart: unless-stopped',
      '    stop_grace_period: 20s',
      ...(s.db.entrypoint ? [`    entrypoint: ${JSON.stringify(s.db.entrypoint)}`] : []),
      '    environment:',
      ...env({ PGPORT: String(this.dbPort), ...s.db.env }),
      '    volumes: ["pgdata:/var/lib/postgresql/data"]',
      '    x-agent:',
      '      policy: manual',
      '      backup: {postgres: {database: postgres, user: postgres}, volumes: [pgdata], restoreOnRollback: true}',
      `      health: {timeout: 60s, stabilization: ${s.db.stabilization ?? '1s'}}`,
      '  web:',
      `    image: ${this.f.image(s.web.version)}`,
      '    network_mode: host',
      '    init: true',
      '    restart: unless-stopped',
      '    stop_grace_period: 2s',
      '    depends_on: [db]',
      '    environment:',
      ...env({ PORT: String(this.f.port), ...s.web.env }),
      '    x-agent:',
      '      policy: manual',
      `      health: {timeout: ${s.web.timeout ?? '20s'}, stabilization: ${s.web.stabilization ?? '500ms'}, probes: [{http: "${probe}", interval: 250ms}]}`,
      'volumes:',
      '  pgdata: {}',
      '',
    ].join('\n');
  }

  /** The good spec with `change` applied. */
  spec(change: StackChange = {}): StackSpec {
    return { web: { ...this.good.web, ...change.web }, db: { ...this.good.db, ...change.db } };
  }

  /** Commits the good spec with `change` as Renovate would, after the agent's own commits; resolves to the commit. */
  async push(message: string, change: StackChange): Promise<string> {
    await this.ws.pull();
    await this.ws.write('desired-state/stack.yaml', this.yaml(this.spec(change)));
    const sha = await this.ws.commit(message, { author: RENOVATE });
    await this.ws.push();
    await this.agent?.announcePush();
    return sha;
  }

  /** The update succeeded: it is the good spec from now on. */
  accept(change: StackChange): void {
    this.good = this.spec(change);
  }

  /** The revert commits the agent pushed for the failed commit `sha`. */
  async revertsOf(sha: string): Promise<LogEntry[]> {
    await this.ws.pull();
    return (await this.ws.log(50)).filter((c) => c.subject.startsWith('Revert "') && c.body.includes(`Reverts: ${sha}`));
  }

  startAgent(env: Record<string, string> = {}): AgentProcess {
    this.agent = new AgentProcess(this.f, { ...this.env, ...env }, this.hookPort);
    return this.agent;
  }

  async stopAgent(): Promise<void> {
    const r = await this.agent?.stop();
    if (r) expect(r.code, r.stderr.slice(-2000)).toBe(0);
    this.agent = undefined;
  }

  async status(): Promise<StatusView> {
    const r = await this.f.run('status', ['--json'], this.env);
    if (r.code !== 0) throw new Error(`agent status failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as StatusView;
  }

  /**
   * Polls `agent status --json` (the engine may be down meanwhile: errors count as "not yet");
   * on timeout the error shows the last status seen and the end of the agent's log.
   */
  async waitStatus(what: string, check: (s: StatusView) => boolean | undefined, timeoutMs = 150_000): Promise<StatusView> {
    let last: StatusView | string | undefined;
    try {
      return await eventually(what, async () => {
        const s = await this.status().catch((err: Error) => err.message);
        last = s;
        return typeof s !== 'string' && check(s) ? s : undefined;
      }, timeoutMs, 500);
    } catch (err) {
      const seen = typeof last === 'string' ? last : JSON.stringify({ services: last?.services, interrupted: last?.interruptedTransactions, conditions: last?.conditions, liveErrors: last?.liveErrors });
      throw new Error(`${(err as Error).message}\nlast status: ${seen}\nagent log: ${this.agent?.output().slice(-4000)}`, { cause: err });
    }
  }

  /** Waits until the agent's log says `text`; on timeout the error shows the end of the log. */
  async waitLog(text: string, timeoutMs = 120_000): Promise<void> {
    await eventually(`the agent to log "${text}"`, async () => this.agent?.output().includes(text), timeoutMs, 100).catch((err: Error) => {
      throw new Error(`${err.message}\nagent log: ${this.agent?.output().slice(-6000)}`, { cause: err });
    });
  }

  /** The agent's containers of this stack, found by its labels, with Docker's health. */
  async managed(): Promise<{ service: string; id: string; name: string; image: string; state: string; health: string }[]> {
    const { docker } = this.f.h;
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`, `${LABELS.stack}=${this.f.stack}`] } });
    const out = await Promise.all(
      list.map(async (c) => {
        const info = await docker.getContainer(c.Id).inspect();
        return { service: c.Labels[LABELS.service] ?? '', id: c.Id, name: info.Name.replace(/^\//, ''), image: c.Image, state: info.State.Status, health: info.State.Health?.Status ?? 'none' };
      }),
    );
    return out.sort((a, b) => a.service.localeCompare(b.service));
  }

  /**
   * After a fault: no transaction left half-done, each service exactly one container, running
   * and healthy, of the good spec (the old or the new version, as the test says by accept()),
   * in sync with what Git names (unless `inSync: false`), the web page served, every row
   * there, and the agent process alive and holding the state directory.
   */
  async settle(what: string, check: (s: StatusView) => boolean | undefined = () => true, o: { inSync?: boolean; timeoutMs?: number } = {}): Promise<StatusView> {
    const want = [
      ['db', this.good.db.image],
      ['web', this.f.image(this.good.web.version)],
    ];
    const s = await this.waitStatus(
      what,
      (v) => {
        if (v.interruptedTransactions.length > 0 || !check(v)) return false;
        return v.services.every((x) => x.running?.health === 'healthy' && (o.inSync === false || x.inSync));
      },
      o.timeoutMs,
    );
    const containers = await eventually('one healthy container per service', async () => {
      const cs = await this.managed();
      return cs.every((c) => c.health === 'healthy') && cs;
    }, 60_000);
    expect(containers.map((c) => [c.service, c.image, c.name, c.state, c.health])).toEqual(want.map(([svc, img]) => [svc, img, `${this.f.stack}-${svc}-1`, 'running', 'healthy']));
    expect(await this.f.page()).toBe(this.good.web.version);
    expect(await rowCount(this.dbPort, TABLE)).toBe(this.rows.count);
    expect(await tableChecksum(this.dbPort, TABLE)).toBe(this.rows.checksum);
    expect(this.agent?.alive, this.agent?.output().slice(-3000)).toBe(true);
    expect(s.agent.runningPid).toBe(this.agent?.pid);
    return s;
  }

  /** How many notifications arrived so far: pass it to notified() to see only later ones. */
  mark(): number {
    return this.hooks.received.length;
  }

  /** The notifications of `type` about `service` that arrived after `since`, once there is one. */
  async notified(since: number, type: AgentEventType, service: string): Promise<AgentEvent[]> {
    return eventually(`a ${type} notification about ${service}`, async () => {
      const found = this.hooks.received.slice(since).map((r) => r.body as AgentEvent).filter((e) => e.type === type && e.service === service);
      return found.length > 0 && found;
    }, 30_000);
  }

  /** Fills the backup store's disk, leaving `leftBytes`; the returned function frees it. */
  async fillStore(leftBytes: number): Promise<() => void> {
    const st = statfsSync(this.store.dir);
    const free = st.bavail * st.bsize;
    const filler = join(this.store.dir, 'filler');
    await promisify(execFile)('fallocate', ['-l', String(free - leftBytes), filler]);
    return () => rmSync(filler, { force: true });
  }

  async stop(): Promise<void> {
    await this.agent?.stop('SIGKILL');
    await this.f.cleanup().catch(() => undefined);
    this.ws?.cleanup();
    await Promise.allSettled([this.engine.stop(), this.registry.stop(), this.git.stop(), this.hooks.close()]);
    await this.store.unmount();
  }
}

/**
 * `fixture/postgres:<tag>` in the test's registry: 15.8 is the run's image (the registry was
 * seeded with it); another tag is the same server with another label (so another digest),
 * pushed and then removed from the engine, so that the agent has to pull it.
 */
async function postgresTag(engine: TestEngine, registry: TestRegistry, tag: string): Promise<PostgresImage> {
  const base = `${registry.host}/${POSTGRES_REPOSITORY}:15.8`;
  const ref = `${registry.host}/${POSTGRES_REPOSITORY}:${tag}`;
  await pullImage(engine.docker, base);
  if (ref !== base) await buildImage(engine.docker, ref, { Dockerfile: `FROM ${base}\nLABEL org.opencontainers.image.version="${tag}"\n` });
  const digest = await pushImage(engine.docker, ref);
  if (ref !== base) await engine.docker.getImage(ref).remove();
  return { tag, ref, digest, pinned: `${ref}@${digest}` };
}
