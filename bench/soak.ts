/**
 * `npm run soak`: one long-lived `agent run` against a Git server, through SOAK_CYCLES (500)
 * commits, each pushed, announced by a signed webhook call and waited for until the agent has
 * reconciled it. After every cycle: the agent's RSS, open file descriptors, threads, the
 * engine's containers and temporary files. At the end: memory growth after the warm-up, leaks,
 * and the figures written to docs/soak.md (between markers). Exits 1 when a limit is broken.
 *
 * SOAK_CYCLES (500), SOAK_SERVICES (4), SOAK_CHANGE_EVERY (5), SOAK_ROLLBACK_EVERY (100, 0: none),
 * SOAK_WRITE_DOC (1 to write docs/soak.md for a run of fewer than 500 cycles), SOAK_SAMPLES (a
 * file to write every cycle's samples to, as CSV).
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerName } from '../agent/core/labels.js';
import type { StatusView } from '../agent/cli/status-view.js';
// The soak stack runs on the host network: the test suite's permissive policy, in AGENT_POLICY_FILE.
import '../test/harness/test-policy-setup.js';
import { startTestEngine } from '../test/harness/engine.js';
import { GitWorkspace } from '../test/harness/git-repo.js';
import { startGitServer } from '../test/harness/git-server.js';
import { buildFixtureImages } from '../test/harness/images.js';
import { freePort } from '../test/harness/ports.js';
import { startRegistry } from '../test/harness/registry.js';
import { CLI, measure } from './lib.js';
import { analyse, type CycleRecord, type EndState, writeSoakDoc } from './soak-report.js';
import { AgentLog, countContainers, sampleMetrics, sampleProcess, tempFiles } from './soak-sample.js';
import { cycleKind, type CycleKind, SoakModel, type SoakService } from './soak-stack.js';

const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const CYCLES = env('SOAK_CYCLES', 500);
const SERVICES = env('SOAK_SERVICES', 4);
const PLAN = { changeEvery: env('SOAK_CHANGE_EVERY', 5), rollbackEvery: env('SOAK_ROLLBACK_EVERY', 100) };
const INTERVAL = '15s';
const STACK = 'soak';
const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Pack files and loose objects of the agent's copy of the repository. */
const gitObjects = (dir: string) => ({
  packs: readdirSync(join(dir, 'pack')).filter((n) => n.endsWith('.pack')).length,
  loose: readdirSync(dir)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .reduce((n, d) => n + readdirSync(join(dir, d)).length, 0),
});

/** What each kind of cycle must come to: the pass's result and its number of transactions. */
const EXPECTED: Record<CycleKind, { result: string; transactions: number }> = {
  'noop-comment': { result: 'no-op', transactions: 0 },
  'noop-extension': { result: 'no-op', transactions: 0 },
  'noop-readme': { result: 'no-op', transactions: 0 },
  image: { result: 'succeeded', transactions: 1 },
  env: { result: 'succeeded', transactions: 1 },
  rollback: { result: 'failed', transactions: 1 },
};

const started = Date.now();
const engine = await startTestEngine();
const registry = await startRegistry();
const server = await startGitServer({ auth: { username: 'agent', password: `pw-${randomBytes(8).toString('hex')}` } });
const root = mkdtempSync(join(tmpdir(), 'soak-'));
let exitCode = 1;
try {
  const images = await buildFixtureImages(engine, registry);
  const services: SoakService[] = [];
  for (let i = 0; i < SERVICES; i++) services.push({ name: `web${i}`, port: await freePort(), version: '1.0.0', value: '0' });
  const model = new SoakModel(STACK, images, services);
  const live = new Set(services.map((s) => containerName(STACK, s.name)));
  await server.createRepo('soak');
  const url = server.repoUrl('soak');
  const auth = server.auth || undefined;
  const ws = await GitWorkspace.init(url, auth, model.files(), 'Initial desired state');

  const stateDir = join(root, 'state');
  const agentTmp = join(root, 'agent-tmp');
  mkdirSync(agentTmp);
  const secret = randomBytes(16).toString('hex');
  writeFileSync(join(root, 'git-password'), `${auth?.password ?? ''}\n`, { mode: 0o600 });
  writeFileSync(join(root, 'webhook-secret'), `${secret}\n`, { mode: 0o600 });
  const hookPort = await freePort();
  const common = ['--git-url', url, '--git-path', 'desired-state', '--state-dir', stateDir, '--docker-host', engine.dockerHost];
  const agentEnv = {
    TMPDIR: agentTmp,
    AGENT_GIT_USERNAME: 'agent',
    AGENT_GIT_PASSWORD_FILE: join(root, 'git-password'),
    AGENT_WEBHOOK_SECRET_FILE: join(root, 'webhook-secret'),
    AGENT_HOST_NAME: 'soak-host',
    AGENT_LOG_LEVEL: 'info',
    AGENT_LOG_FORMAT: 'json',
  };
  const agent = spawn(process.execPath, [CLI, 'run', ...common, '--interval', INTERVAL, '--listen', `127.0.0.1:${hookPort}`], { env: { ...process.env, ...agentEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  const agentExit = new Promise<number | null>((r) => agent.on('exit', (code) => r(code)));
  const logPath = join(root, 'agent.log');
  const alog = new AgentLog(agent, createWriteStream(logPath));
  const pid = agent.pid as number;

  const hook = async (sha: string) => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
    const res = await fetch(`http://127.0.0.1:${hookPort}/hooks/git`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'X-Gitea-Signature': createHmac('sha256', secret).update(body).digest('hex') } });
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
  };

  try {
    const first = await alog.waitFor(await ws.headSha(), 0, 180_000);
    if (first.result !== 'succeeded') throw new Error(`first deploy: ${JSON.stringify(first)}`);
    log(`first deploy of ${SERVICES} services done after ${((Date.now() - started) / 1000).toFixed(0)} s; ${CYCLES} cycles follow`);

    const cycles: CycleRecord[] = [];
    const loopStarted = Date.now();
    for (let i = 0; i < CYCLES; i++) {
      const kind = cycleKind(i, PLAN);
      const { message, crashing } = model.edit(i, kind);
      for (const [path, content] of Object.entries(model.files(crashing))) await ws.write(path, content);
      const sha = await ws.commit(message);
      const t0 = Date.now();
      await ws.push();
      const from = alog.finished.length;
      await hook(sha);
      const pass = await alog.waitFor(sha, from, kind === 'rollback' ? 180_000 : 120_000);
      const anomalies: string[] = [];
      const want = EXPECTED[kind];
      if (pass.result !== want.result || pass.transactions !== want.transactions) anomalies.push(`expected ${want.result} with ${want.transactions} transaction(s), got ${pass.result} with ${pass.transactions}`);
      if (kind === 'rollback') {
        // The same pass pushed the revert commit; the agent then reconciles it at once.
        const head = await ws.pull();
        const subject = (await ws.log(1))[0]?.subject ?? '';
        if (head === sha || !subject.startsWith('Revert "Soak')) anomalies.push(`no revert commit after the rollback (head ${head.slice(0, 12)} "${subject}")`);
        else {
          const back = await alog.waitFor(head, from, 120_000);
          if (back.result !== 'no-op') anomalies.push(`the revert commit: expected no-op, got ${back.result}`);
        }
      }
      const ms = Date.now() - t0;
      const proc = sampleProcess(pid);
      const heap = await sampleMetrics(hookPort);
      const containers = await countContainers(engine.docker, live);
      const temps = tempFiles(stateDir, agentTmp).length;
      if (containers.all !== SERVICES || containers.running !== SERVICES || containers.extra.length > 0) anomalies.push(`containers: ${JSON.stringify(containers)}`);
      cycles.push({ i, kind, sha, ms, passMs: pass.durationMs, ...proc, ...heap, containers: containers.all, managed: containers.managed, temps, anomalies });
      for (const a of anomalies) log(`cycle ${i} (${kind}): ${a}`);
      if (i % 10 === 9 || i === CYCLES - 1) log(`cycle ${i + 1}/${CYCLES} ${kind}: ${ms} ms, RSS ${(proc.rssKiB / 1024).toFixed(1)} MiB, ${proc.fds} fds, ${containers.all} containers, ${temps} temp files`);
    }
    const loopMs = Date.now() - loopStarted;

    // The end state, once the agent is idle: containers, temp files, what `agent status` says.
    await sleep(2000);
    const containers = await countContainers(engine.docker, live);
    const tempsRunning = tempFiles(stateDir, agentTmp);
    const status = await measure(process.execPath, [CLI, 'status', '--json', ...common], agentEnv);
    const view = JSON.parse(status.stdout) as StatusView;
    const expected = model.expected();
    const outOfSync = view.services.filter((s) => !s.inSync || !s.running?.image.includes(`:${expected[s.name]}@`)).map((s) => s.name);
    const ready = view.conditions.find((c) => c.type === 'Ready')?.status === 'True';
    agent.kill('SIGTERM');
    const code = await agentExit;
    const end: EndState = {
      containers,
      expectedContainers: SERVICES,
      tempFilesRunning: tempsRunning,
      tempFilesAfterExit: tempFiles(stateDir, agentTmp),
      outOfSync,
      ready,
      exitCode: code,
      gitObjects: gitObjects(join(stateDir, 'git', 'repo.git', 'objects')),
      problems: alog.problems,
    };
    if (process.env.SOAK_SAMPLES) writeFileSync(process.env.SOAK_SAMPLES, ['cycle,kind,ms,passMs,rssKiB,heapUsedKiB,heapTotalKiB,externalKiB,handles,fds,threads,cpuSeconds,containers,temps', ...cycles.map((c) => [c.i, c.kind, c.ms, c.passMs, c.rssKiB, c.heapUsedKiB, c.heapTotalKiB, c.externalKiB, c.handles, c.fds, c.threads, c.cpuSeconds, c.containers, c.temps].join(','))].join('\n') + '\n');
    const result = analyse(cycles, end);
    log(result.summary);
    if (CYCLES >= 500 || process.env.SOAK_WRITE_DOC === '1') writeSoakDoc(result, { cycles: CYCLES, services: SERVICES, plan: PLAN, interval: INTERVAL, loopMs, totalMs: Date.now() - started });
    exitCode = result.ok ? 0 : 1;
  } finally {
    if (agent.exitCode === null) agent.kill('SIGKILL');
    if (exitCode !== 0) {
      copyFileSync(logPath, join(tmpdir(), 'soak-agent.log'));
      log(`soak FAILED; the agent's log is in ${join(tmpdir(), 'soak-agent.log')}`);
    }
    ws.cleanup();
  }
} catch (err) {
  log(`soak aborted: ${(err as Error).stack ?? String(err)}`);
} finally {
  await server.stop();
  await engine.stop();
  await registry.stop();
  rmSync(root, { recursive: true, force: true });
}
process.exit(exitCode);
