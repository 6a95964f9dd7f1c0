/**
 * The agent beside Debian's docker-compose 1.29, from the same published Compose files
 * (../shared/compose-corpus), on the same engine: each service's container as the agent creates
 * it (its Docker adapter, not started) and as `docker-compose up --no-start` creates it, compared
 * field by field: networks and aliases, mounts, environment, limits, labels, restart, health
 * check, ports. Images are mapped to a local stand-in; a difference is a bug or a decision
 * documented here.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { LABELS } from '../../agent/core/labels.js';
import { containerName } from '../../agent/core/labels.js';
import { createDockerAdapter } from '../../agent/docker/dockerode-adapter.js';
import { loadDesiredState, snapshotInput } from '../../agent/desired/load.js';
import { networkHash } from '../../agent/desired/normalize-networks.js';
import { planChanges } from '../../agent/plan/plan.js';
import { createLocalDirSource } from '../../agent/source/local-dir.js';
import { CORPUS_ENV, checkoutCorpus, corpusFile } from '../harness/corpus.js';
import { harness, type Harness } from '../harness/provided.js';

/** The files 1.29 reads (no `build:`, no home-directory binds): at least 8, as the issue asks. */
const FILES = ['ac-elasticsearch-logstash-kibana', 'ac-gitea-postgres', 'ac-nextcloud-postgres', 'ac-nextcloud-redis-mariadb', 'ac-pihole-cloudflared-doh', 'ac-plex', 'ac-portainer', 'ac-postgresql-pgadmin', 'ac-prometheus-grafana', 'ac-wireguard', 'ac-wordpress-mysql', 'gitea-docs-named-volume', 'lsio-jellyfin'];

let h: Harness;
let stand: string;
const dirs: string[] = [];

beforeAll(async () => {
  h = harness();
  stand = (await import('../harness/images.js')).WEB_REPOSITORY;
  stand = `${h.registryHost}/${stand}:1.0.0@${h.images['1.0.0'].digest}`;
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Inspect = Docker.ContainerInspectInfo;

/** The fields both create, in one shape; the labels and names that are each tool's own left out. */
function fields(c: Inspect, project: string, imageEnv: Set<string>) {
  const own = (k: string) => k.startsWith('com.docker.compose.') || k.startsWith(LABELS.managed.replace('managed', ''));
  const hc = c.HostConfig;
  return {
    env: (c.Config.Env ?? []).filter((e) => !imageEnv.has(e)).sort(),
    cmd: c.Config.Cmd ?? null,
    entrypoint: c.Config.Entrypoint ?? null,
    user: c.Config.User ?? '',
    workingDir: c.Config.WorkingDir ?? '',
    tty: c.Config.Tty,
    stdin: c.Config.OpenStdin,
    labels: Object.fromEntries(Object.entries(c.Config.Labels ?? {}).filter(([k]) => !own(k) && !k.startsWith('org.opencontainers.'))),
    exposed: Object.keys(c.Config.ExposedPorts ?? {}).sort(),
    healthcheck: c.Config.Healthcheck ?? null,
    // No policy and "no" mean the same to the engine: 1.29 leaves it empty, the agent writes "no".
    restart: hc.RestartPolicy?.Name || 'no',
    ports: Object.entries(hc.PortBindings ?? {}).map(([k, v]) => `${k}=${((v ?? []) as { HostIp: string; HostPort: string }[]).map((b) => `${b.HostIp}:${b.HostPort}`).join(',')}`).sort(),
    // Bind sources of relative paths differ by design (the agent binds the repository's copy): kept by target and mode.
    mounts: (c.Mounts ?? []).map((m) => `${m.Type} ${m.Type === 'volume' ? m.Name : m.Source.startsWith('/srv/parity/') ? '(relative)' : m.Source} -> ${m.Destination}${m.RW ? '' : ' ro'}`).sort(),
    capAdd: [...(hc.CapAdd ?? [])].sort(),
    capDrop: [...(hc.CapDrop ?? [])].sort(),
    privileged: hc.Privileged,
    readOnly: hc.ReadonlyRootfs,
    sysctls: hc.Sysctls ?? {},
    ulimits: hc.Ulimits ?? [],
    memory: hc.Memory ?? 0,
    nanoCpus: hc.NanoCpus ?? 0,
    shm: hc.ShmSize ?? 0,
    devices: ((hc.Devices ?? []) as { PathOnHost: string; PathInContainer: string }[]).map((d) => `${d.PathOnHost}:${d.PathInContainer}`).sort(),
    extraHosts: [...(hc.ExtraHosts ?? [])].sort(),
    dns: hc.Dns ?? [],
    securityOpt: hc.SecurityOpt ?? [],
    logDriver: hc.LogConfig?.Type ?? '',
    networkMode: hc.NetworkMode?.startsWith('container:') ? 'container:(service)' : hc.NetworkMode,
    networks: Object.entries(c.NetworkSettings.Networks ?? {}).map(([n, e]) => `${n} [${((e.Aliases ?? []) as string[]).filter((a) => a !== c.Id.slice(0, 12)).sort().join(',')}]`).sort(),
    project,
  };
}

describe.each(FILES)('%s', (name) => {
  it('the agent creates the containers docker-compose 1.29 creates', async () => {
    const project = `p${name.replace(/[^a-z0-9]/g, '').slice(0, 20)}`;
    // Host paths the file binds, moved under a folder of the test (both tools bind the same ones).
    const host = mkdtempSync(join(tmpdir(), 'parity-host-'));
    dirs.push(host);
    const content = corpusFile(name)
      .replace(/^(\s+image:\s*).+$/gm, `$1${stand}`)
      .replace(/(^\s+-\s+["']?|^\s+source:\s+["']?)(\/[\w./-]+)(?=[:"'\s]|$)/gm, (_m, pre: string, path: string) => {
        const moved = join(host, path);
        if (/\.\w+$|localtime|timezone|\.sock$/.test(path)) {
          mkdirSync(join(moved, '..'), { recursive: true });
          writeFileSync(moved, '');
        } else mkdirSync(moved, { recursive: true });
        return `${pre}${moved}`;
      });
    const dir = checkoutCorpus(name, content);
    dirs.push(dir);
    const env = { ...process.env, ...CORPUS_ENV, DOCKER_HOST: h.dockerHost };

    // docker-compose 1.29: create, then start (1.29 joins the other networks at the start);
    // a stand-in that exits at once is fine, only what was created is compared.
    const composed = spawnSync('docker-compose', ['-p', project, 'up', '--no-start'], { cwd: dir, env, encoding: 'utf8' });
    expect(composed.status, composed.stderr).toBe(0);
    spawnSync('docker-compose', ['-p', project, 'start'], { cwd: dir, env, encoding: 'utf8' });
    const imageEnv = new Set((await h.docker.getImage(stand).inspect()).Config.Env ?? []);
    const theirs = new Map<string, ReturnType<typeof fields>>();
    for (const c of await h.docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } })) {
      theirs.set(c.Labels['com.docker.compose.service'] as string, fields(await h.docker.getContainer(c.Id).inspect(), project, imageEnv));
    }
    // Out of the way of the agent's containers (container_name, ports); the volumes stay.
    expect(spawnSync('docker-compose', ['-p', project, 'down', '--timeout', '1'], { cwd: dir, env, encoding: 'utf8' }).status).toBe(0);

    // The agent: the same file, its plan, its adapter on the same engine.
    const snap = await createLocalDirSource(dir).read();
    const r = loadDesiredState(snapshotInput(snap, { env: CORPUS_ENV, defaultStack: project, policy: undefined, roots: { files: '/srv/parity/files', data: '/srv/parity/data' } }));
    if (!r.ok) throw new Error(r.issues.map((i) => `${i.line}: ${i.message}`).join('\n'));
    const docker = createDockerAdapter({ host: h.dockerHost, dockerConfigPath: '/nonexistent' });
    const plan = planChanges({ desired: r.state, actual: { stack: project, services: {} }, applied: {}, held: {}, prune: false });
    const differences: string[] = [];
    for (const step of plan.steps) {
      const to = step.to!;
      for (const n of to.networks ?? []) await docker.ensureNetwork(n, { [LABELS.networkHash]: networkHash(n) });
      for (const m of to.spec.volumes.filter((v) => v.type === 'volume')) await docker.ensureVolume(m.source, {});
      // Host paths of data directories must exist for the engine to bind them.
      const spec = { ...to.spec, volumes: to.spec.volumes.map((m) => (m.type === 'bind' && (m.project || m.dataDir) ? { ...m, source: '/tmp' } : m)) };
      const id = await docker.createContainer({ name: containerName(project, step.service, spec.containerName), spec, labels: {} });
      const agent = fields(await h.docker.getContainer(id).inspect(), project, imageEnv);
      const compose = theirs.get(step.service);
      if (!compose) throw new Error(`docker-compose created no container for ${step.service}`);
      // Decisions (docs/desired-state.md): a relative bind's source is the repository's copy (or
      // the stack's data directory), and a copy is always read-only.
      const relMounts = (x: typeof agent) => x.mounts.map((m) => m.replace(/^bind \/tmp -> /, 'bind (relative) -> ').replace(/^bind \S+\/corpus-[^ ]+ -> /, 'bind (relative) -> ').replace(/^(bind \(relative\) -> \S+) ro$/, '$1'));
      for (const key of Object.keys(agent) as (keyof typeof agent)[]) {
        const a = key === 'mounts' ? relMounts(agent) : agent[key];
        const c = key === 'mounts' ? relMounts(compose) : compose[key];
        if (JSON.stringify(a) !== JSON.stringify(c)) differences.push(`${step.service}.${key}: agent ${JSON.stringify(a)} / compose ${JSON.stringify(c)}`);
      }
      await h.docker.getContainer(id).remove({ force: true });
    }
    for (const n of await h.docker.listNetworks({ filters: { name: [project] } })) await h.docker.getNetwork(n.Id).remove().catch(() => undefined);
    for (const v of (await h.docker.listVolumes()).Volumes ?? []) if (v.Name.startsWith(`${project}_`)) await h.docker.getVolume(v.Name).remove().catch(() => undefined);
    expect(differences).toEqual([]);
  });
});
