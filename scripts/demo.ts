/**
 * The whole update cycle on local components, in about a minute:
 *   a private Docker engine and registry (unless DEMO_DOCKER_HOST points at an engine),
 *   images built offline, a two-service stack applied, a good update, a failing update that
 *   is rolled back with its data restored from the restic backup taken before it, a restore
 *   drill, and `agent status` after each step.
 * Everything runs through the real `agent` CLI. Run: `npm run demo` (keep it up: `-- --keep`).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';
import { startTestEngine, type TestEngine } from '../test/harness/engine.js';
import { buildFixtureImages } from '../test/harness/images.js';
import { freePort } from '../test/harness/ports.js';
import { startRegistry } from '../test/harness/registry.js';
import { buildResticImage } from '../test/harness/restic-image.js';
import { stackYaml } from './demo-stack.js';

const CLI = resolve(import.meta.dirname, '../dist/agent/cli/main.js');
const keep = process.argv.includes('--keep');
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function banner(text: string): void {
  process.stdout.write(`\n${bold(`== ${text}`)}\n`);
}

async function main(): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'agent-demo-'));
  const sourceDir = join(root, 'desired-state');
  const stateDir = join(root, 'state');
  // The operator's policy (docs/security.md): the defaults, plus the host network the demo's
  // services listen on (127.0.0.1 only), which a fresh install refuses.
  const policyFile = join(root, 'policy.yaml');
  writeFileSync(policyFile, 'networkModes: [bridge, none, service, host]\n');
  mkdirSync(sourceDir);
  let engine: TestEngine | undefined;
  const registry = await startRegistry();
  try {
    let dockerHost = process.env.DEMO_DOCKER_HOST;
    let docker: Docker;
    if (dockerHost) {
      docker = new Docker({ socketPath: dockerHost.replace(/^unix:\/\//, '') });
      await docker.ping();
      banner(`Using the engine at ${dockerHost}`);
    } else {
      banner('Starting a private Docker engine and a local registry (nothing else on this host is touched)');
      engine = await startTestEngine();
      dockerHost = engine.dockerHost;
      docker = engine.docker;
    }
    process.stdout.write(`engine ${dockerHost}\nregistry ${registry.host}\n`);
    banner('Building the demo images offline and pushing them to the local registry');
    const images = await buildFixtureImages({ docker }, registry);
    process.stdout.write(Object.values(images).map((i) => `${i.pinned}`).join('\n') + '\n');
    const restic = await buildResticImage(docker, registry.host);
    process.stdout.write(`${restic.pinned} (restic, from this host's Debian package)\n`);

    const ports = { api: await freePort(), web: await freePort() };
    const agent = (...args: string[]) => {
      process.stdout.write(`\n$ agent ${args.join(' ')}\n`);
      const r = spawnSync(process.execPath, [CLI, ...args, '--source', sourceDir, '--state-dir', stateDir, '--docker-host', dockerHost as string], { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, AGENT_LOG_LEVEL: 'fatal', AGENT_BACKUP_RESTIC_IMAGE: restic.pinned, AGENT_POLICY_FILE: policyFile } });
      const stderr = r.stderr.toString().trim();
      if (stderr) process.stdout.write(`${stderr}\n`);
      process.stdout.write(`(exit code ${r.status})\n`);
      return r.status;
    };
    const write = (api: string, web: string) => writeFileSync(join(sourceDir, 'compose.yaml'), stackYaml(images, ports, api, web));

    banner('1. First deploy: api 1.0.0, web 1.0.0 (web depends on api)');
    write('1.0.0', '1.0.0');
    agent('validate');
    agent('plan');
    agent('apply');
    agent('status');

    const inApi = async (cmd: string) => {
      const [c] = await docker.listContainers({ filters: { label: ['io.gitops-agent.stack=demo', 'io.gitops-agent.service=api'] } });
      const exec = await docker.getContainer(c?.Id ?? 'missing').exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, Tty: true });
      const stream = await exec.start({ hijack: true, stdin: false, Tty: true });
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString()));
      await new Promise((r) => stream.on('end', r));
      return text.trim();
    };
    await inApi('echo "notes written by api 1.0.0" > /data/notes.txt');
    process.stdout.write(`api's volume holds: ${await inApi('cat /data/notes.txt')}\n`);

    banner('2. A good update: api 1.0.0 -> 1.1.0 (backup of its volume with restic, pull, recreate, health gate, old container removed)');
    write('1.1.0', '1.0.0');
    agent('plan');
    agent('apply');
    process.stdout.write(`api now serves: ${await page(ports.api)}\n`);

    await inApi('echo "notes written by api 1.1.0" > /data/notes.txt');
    banner('3. A failing update: api 1.1.0 -> 1.3.0, which crashes at start: rolled back automatically, its volume restored from the backup taken just before');
    write('1.3.0', '1.0.0');
    agent('plan');
    const code = agent('apply');
    process.stdout.write(`api still serves: ${await page(ports.api)} (apply exit code ${code}: an update failed)\n`);
    process.stdout.write(`api's volume holds: ${await inApi('cat /data/notes.txt')}\n`);

    banner('4. agent status: the failure is reported, the failed version is held until the desired state changes');
    agent('status');
    agent('apply');

    banner('5. The backups, and a restore drill: the latest backup restored into a scratch volume and checked, what runs untouched');
    agent('backup', 'list');
    agent('backup', 'drill');
    agent('status');

    if (keep) {
      process.stdout.write(`\nKept running. Desired state: ${sourceDir}\nState: ${stateDir}\nEngine: ${dockerHost}\n`);
      return 0;
    }
    banner('Cleaning up');
    for (const c of await docker.listContainers({ all: true, filters: { label: ['io.gitops-agent.stack=demo'] } })) await docker.getContainer(c.Id).remove({ force: true });
    return 0;
  } finally {
    if (!keep) {
      await registry.stop();
      await engine?.stop();
      rmSync(root, { recursive: true, force: true });
    }
  }
}

async function page(port: number): Promise<string> {
  try {
    return (await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim();
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  return 1;
});
