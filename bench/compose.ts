/**
 * The agent beside Debian's docker-compose (1.29), the way the reference deployment applies
 * updates today (`pull` + `up -d`), on the same engine with the same images and services: each
 * service on the project's network (the engine's link-local address pool), its port published
 * on 127.0.0.1, as a Compose stack runs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestEngine, type TestEngine } from '../test/harness/engine.js';
import { buildFixtureImages, type FixtureImages } from '../test/harness/images.js';
import { freePort } from '../test/harness/ports.js';
import { startRegistry } from '../test/harness/registry.js';
import { CLI, measure, median, run, waitServing } from './lib.js';
import { firstServingAfter, longestOutage, startProbe } from './probe.js';

const N = Number(process.env.BENCH_SERVICES ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

export interface Pair {
  agent: number;
  compose: number;
}

export interface ComposeBenchResult {
  services: number;
  runs: number;
  firstDeployMs: Pair;
  noopMs: Pair & { agentPass: number };
  oneChangedMs: Pair;
  plan200: { agentMs: number; agentRssMiB: number; composeConfigMs: number; composeRssMiB: number };
  idle: { agentRssMiB: number; agentCpuSecondsPerMinute: number; composeLoopCpuSecondsPerMinute: number };
  rollbackMs: Pair;
  downtimeMs: Pair;
}

/**
 * Docker's default check interval (30 s) instead of the fixture image's 1 s: a hundred containers
 * each checked every second keep two cores busy with runc and measure nothing but that.
 */
const HEALTHCHECK = '    healthcheck: {interval: 30s, timeout: 2s, retries: 3}';

const name = (i: number) => `svc${String(i).padStart(2, '0')}`;

/** Inside the container: the port every service listens on, on the network's address. */
const INNER = 8080;

/**
 * The network of each stack: 50 services do not fit in one of the engine's /28s, so each has a
 * /24 of the engine's own link-local block (its upper half, away from the /28s it hands out).
 */
let subnets = { agent: '169.254.0.0/24', compose: '169.254.0.0/24' };

function networks(subnet: string): string {
  return `networks:\n  default:\n    ipam: {config: [{subnet: ${subnet}}]}\n`;
}

function agentStack(images: FixtureImages, ports: number[], version: (i: number) => string, n = ports.length, attempt?: (i: number) => string | undefined): string {
  const lines = [networks(subnets.agent), 'name: bench', 'services:'];
  for (let i = 0; i < n; i++) {
    const extra = attempt?.(i);
    lines.push(
      `  ${name(i)}:`,
      `    image: ${images[version(i) as keyof FixtureImages].pinned}`,
      '    init: true',
      HEALTHCHECK,
      `    environment: {LISTEN: 0.0.0.0, PORT: "${INNER}"${extra ? `, ATTEMPT: "${extra}"` : ''}}`,
      `    ports: ["127.0.0.1:${ports[i] ?? 20000 + i}:${INNER}"]`,
      '    x-agent:',
      '      policy: auto',
      `      health: {timeout: 60s, stabilization: 0s, probes: [{http: "http://127.0.0.1:${ports[i] ?? 20000 + i}/", interval: 100ms}]}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function composeFile(images: FixtureImages, ports: number[], version: (i: number) => string, n = ports.length): string {
  const lines = ['version: "2.4"', networks(subnets.compose), 'services:'];
  for (let i = 0; i < n; i++) lines.push(`  ${name(i)}:`, `    image: ${images[version(i) as keyof FixtureImages].pinned}`, '    init: true', HEALTHCHECK, `    environment: {LISTEN: 0.0.0.0, PORT: "${INNER}"}`, `    ports: ["127.0.0.1:${ports[i] ?? 21000 + i}:${INNER}"]`);
  return `${lines.join('\n')}\n`;
}


function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function benchCompose(log: (s: string) => void): Promise<ComposeBenchResult> {
  const engine: TestEngine = await startTestEngine();
  const [a, b, c] = engine.addressPool.split(/[./]/).map(Number);
  subnets = { agent: `${a}.${b}.${(c ?? 0) + 2}.0/24`, compose: `${a}.${b}.${(c ?? 0) + 3}.0/24` };
  const registry = await startRegistry();
  const root = mkdtempSync(join(tmpdir(), 'bench-compose-'));
  try {
    const images = await buildFixtureImages(engine, registry);
    const aPorts = await Promise.all(Array.from({ length: N }, () => freePort()));
    const cPorts = await Promise.all(Array.from({ length: N }, () => freePort()));
    const source = join(root, 'desired');
    mkdirSync(source);
    const cfile = join(root, 'docker-compose.yml');
    const denv = { DOCKER_HOST: engine.dockerHost, COMPOSE_PROJECT_NAME: 'benchcompose' };
    const aenv = { AGENT_LOG_LEVEL: 'warn', AGENT_HOST_NAME: 'bench', AGENT_CONCURRENCY: '4', AGENT_HTTP_LISTEN: '' };
    const agentArgs = (cmd: string[]) => [CLI, ...cmd, '--source', source, '--state-dir', join(root, 'state'), '--docker-host', engine.dockerHost];
    const compose = (args: string[]) => measure('docker-compose', ['-f', cfile, ...args], denv);
    const writeAgent = (v: (i: number) => string) => writeFileSync(join(source, 'stack.yaml'), agentStack(images, aPorts, v));
    const writeCompose = (v: (i: number) => string) => writeFileSync(cfile, composeFile(images, cPorts, v));
    const all = () => '1.0.0';

    // First deploy, until every service serves.
    writeAgent(all);
    const aFirst = await measure(process.execPath, agentArgs(['apply']), aenv);
    if (aFirst.code !== 0) throw new Error(`agent apply failed: ${aFirst.stderr}`);
    writeCompose(all);
    const cStart = Date.now();
    const cFirst = await compose(['up', '-d']);
    if (cFirst.code !== 0) throw new Error(`compose up failed: ${cFirst.stderr}`);
    for (const p of cPorts) await waitServing(`http://127.0.0.1:${p}/`, '1.0.0');
    const firstDeployMs = { agent: aFirst.ms, compose: Date.now() - cStart };
    log(`first deploy of ${N}: agent ${aFirst.ms.toFixed(0)} ms (gate included), compose ${firstDeployMs.compose} ms (until serving)`);

    // No-op reconcile.
    const aNoop: number[] = [];
    const cNoop: number[] = [];
    for (let i = 0; i < RUNS + 2; i++) {
      aNoop.push((await measure(process.execPath, agentArgs(['apply']), aenv)).ms);
      cNoop.push((await compose(['up', '-d'])).ms);
    }
    const loop = await run(process.execPath, ['-e', `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ${JSON.stringify(agentArgs(['run', '--interval', '1s']))}, { env: { ...process.env, AGENT_LOG_LEVEL: 'info', AGENT_LOG_FORMAT: 'json' } });
      let out = ''; c.stderr.on('data', (d) => out += d);
      setTimeout(() => { c.kill('SIGTERM'); c.on('close', () => { process.stdout.write(out); }); }, 12000);
    `], aenv);
    const passes = loop.out.split('\n').filter((l) => l.includes('"Reconcile finished"')).map((l) => (JSON.parse(l) as { durationMs: number }).durationMs).slice(2);
    const noopMs = { agent: median(aNoop), compose: median(cNoop), agentPass: median(passes) };
    log(`no-op: agent apply ${noopMs.agent.toFixed(0)} ms (in-process pass ${noopMs.agentPass} ms over ${passes.length} passes), compose up -d ${noopMs.compose.toFixed(0)} ms`);

    // One image changed among N, until healthy / serving.
    const aOne: number[] = [];
    const cOne: number[] = [];
    const aDown: number[] = [];
    const cDown: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const to = r % 2 === 0 ? '1.1.0' : '1.0.0';
      const changed = (i: number) => (i === 7 ? to : '1.0.0');
      writeAgent(changed);
      const aProbe = startProbe(`http://127.0.0.1:${aPorts[7]}/`);
      const a = await measure(process.execPath, agentArgs(['apply']), aenv);
      await waitServing(`http://127.0.0.1:${aPorts[7]}/`, to);
      aDown.push(longestOutage(await aProbe.stop()));
      if (a.code !== 0) throw new Error(`agent update failed: ${a.stdout}${a.stderr}`);
      aOne.push(a.ms);
      writeCompose(changed);
      const cProbe = startProbe(`http://127.0.0.1:${cPorts[7]}/`);
      const t0 = Date.now();
      const up = await compose(['up', '-d']);
      if (up.code !== 0) throw new Error(`docker-compose up -d failed (${up.code}): ${up.stderr.slice(-2000)}`);
      await waitServing(`http://127.0.0.1:${cPorts[7]}/`, to);
      cOne.push(Date.now() - t0);
      cDown.push(longestOutage(await cProbe.stop()));
    }
    const oneChangedMs = { agent: median(aOne), compose: median(cOne) };
    const downtimeMs = { agent: median(aDown), compose: median(cDown) };
    log(`one changed: agent ${oneChangedMs.agent.toFixed(0)} ms, compose ${oneChangedMs.compose.toFixed(0)} ms; downtime agent ${downtimeMs.agent} ms, compose ${downtimeMs.compose} ms`);

    // Rollback: from the failed verdict to the old version serving again.
    const aRoll: number[] = [];
    const cRoll: number[] = [];
    const served = RUNS % 2 === 0 ? '1.0.0' : '1.1.0';
    const crashVariants = ['1.3.0', '1.3.0', '1.3.0'];
    for (let r = 0; r < RUNS; r++) {
      // A new spec each time (an env var), so that the failed one is not held.
      writeFileSync(join(source, 'stack.yaml'), agentStack(images, aPorts, (i) => (i === 7 ? (crashVariants[r] as string) : '1.0.0'), aPorts.length, (i) => (i === 7 ? String(r) : undefined)));
      const probe = startProbe(`http://127.0.0.1:${aPorts[7]}/`, 10);
      const a = await run(process.execPath, agentArgs(['apply']), { ...aenv, AGENT_LOG_LEVEL: 'info', AGENT_LOG_FORMAT: 'json' });
      const samples = await probe.stop();
      const verdictLine = a.out.split('\n').find((l) => l.includes('Health gate failed; rolling back'));
      if (!verdictLine) throw new Error(`no failed verdict in:\n${a.out.slice(-2000)}`);
      const verdict = Date.parse((JSON.parse(verdictLine) as { time: string }).time);
      const back = firstServingAfter(samples, verdict);
      if (back) aRoll.push(back - verdict);
      // compose: the failing version, noticed, then `up -d` with the previous one.
      writeCompose((i) => (i === 7 ? '1.3.0' : '1.0.0'));
      await compose(['up', '-d']);
      writeCompose((i) => (i === 7 ? served : '1.0.0'));
      const cProbe = startProbe(`http://127.0.0.1:${cPorts[7]}/`, 10);
      const t0 = Date.now();
      await compose(['up', '-d']);
      await waitServing(`http://127.0.0.1:${cPorts[7]}/`, served);
      const cSamples = await cProbe.stop();
      cRoll.push((firstServingAfter(cSamples, t0) ?? Date.now()) - t0);
    }
    const rollbackMs = { agent: median(aRoll), compose: median(cRoll) };
    log(`rollback: agent ${rollbackMs.agent} ms from the failed verdict to serving, compose ${rollbackMs.compose} ms from "up -d" of the previous image`);

    // Plan of 200 services (none deployed) and compose's parsing of the same.
    const planDir = join(root, 'plan200');
    mkdirSync(planDir);
    const ports200 = Array.from({ length: 200 }, (_, i) => 30000 + i);
    writeFileSync(join(planDir, 'stack.yaml'), agentStack(images, ports200, all).replace('name: bench', 'name: plan200'));
    const c200 = join(root, 'compose200.yml');
    writeFileSync(c200, composeFile(images, ports200, all));
    const pA: number[] = [];
    const pARss: number[] = [];
    const pC: number[] = [];
    const pCRss: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const p = await measure(process.execPath, [CLI, 'plan', '--source', planDir, '--state-dir', join(root, 'state200'), '--docker-host', engine.dockerHost], aenv);
      pA.push(p.ms);
      pARss.push(p.maxRssKiB / 1024);
      const c = await measure('docker-compose', ['-f', c200, '-p', 'plan200', 'config', '-q'], denv);
      pC.push(c.ms);
      pCRss.push(c.maxRssKiB / 1024);
    }
    const plan200 = { agentMs: median(pA), agentRssMiB: Math.max(...pARss), composeConfigMs: median(pC), composeRssMiB: Math.max(...pCRss) };
    log(`plan of 200: agent ${plan200.agentMs.toFixed(0)} ms, ${plan200.agentRssMiB.toFixed(0)} MiB; compose config ${plan200.composeConfigMs.toFixed(0)} ms, ${plan200.composeRssMiB.toFixed(0)} MiB`);

    // Idle: agent run polling every 10 s over the N services, beside a loop of `compose up -d` every 10 s.
    const idle = spawn(process.execPath, agentArgs(['run', '--interval', '10s']), { env: { ...process.env, ...aenv }, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 20_000));
    const cpu0 = cpuSeconds(idle.pid as number);
    const rss: number[] = [];
    for (let s = 0; s < 60; s++) {
      rss.push(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${idle.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const cpu1 = cpuSeconds(idle.pid as number);
    idle.kill('SIGTERM');
    await new Promise((r) => idle.on('close', r));
    const usage = await run('/bin/sh', ['-c', `/usr/bin/time -f '%U %S' sh -c 'end=$(( $(date +%s) + 60 )); while [ $(date +%s) -lt $end ]; do docker-compose -f ${cfile} up -d >/dev/null 2>&1; sleep 10; done'`], denv);
    const [u, sy] = usage.out.trim().split('\n').pop()!.split(' ').map(Number);
    const idleResult = { agentRssMiB: median(rss), agentCpuSecondsPerMinute: cpu1 - cpu0, composeLoopCpuSecondsPerMinute: (u ?? 0) + (sy ?? 0) };
    log(`idle: agent ${idleResult.agentRssMiB.toFixed(0)} MiB RSS, ${idleResult.agentCpuSecondsPerMinute.toFixed(2)} CPU s/min; compose loop ${idleResult.composeLoopCpuSecondsPerMinute.toFixed(2)} CPU s/min`);

    await compose(['down']);
    return { services: N, runs: RUNS, firstDeployMs, noopMs, oneChangedMs, plan200, idle: idleResult, rollbackMs, downtimeMs };
  } finally {
    await engine.stop();
    await registry.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
