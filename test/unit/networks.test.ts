import { describe, expect, it } from 'vitest';
import type { Revision } from '../../agent/core/ids.js';
import { toCreateOptions } from '../../agent/docker/container-options.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import { networkHash } from '../../agent/desired/normalize-networks.js';
import { groupByService } from '../../agent/observe/observe.js';
import { planChanges } from '../../agent/plan/plan.js';

const D = `sha256:${'a'.repeat(64)}`;
const img = (n: string) => `reg.example:5000/${n}:1.0.0@${D}`;

function load(content: string) {
  const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: 'dir:n' as Revision, env: {}, defaultStack: 'x' });
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.line}: ${i.message}`).join('\n'));
  return r.state;
}

/** Gitea's documented shape: an app and its database on the project network, nginx in front. */
const GITEA = `name: gitea
services:
  db:
    image: ${img('postgres')}
  server:
    image: ${img('gitea')}
    depends_on: [db]
    ports: ["127.0.0.1:3000:3000"]
  nginx:
    image: ${img('nginx')}
    networks:
      default:
      front: {aliases: [proxy], priority: 10}
    links: ["server:gitea"]
    extra_hosts: ["host.docker.internal=169.254.1.1", "metadata:169.254.1.2"]
    dns: 169.254.1.53
    hostname: edge
  sidecar:
    image: ${img('sidecar')}
    network_mode: service:server
networks:
  front:
    ipam: {config: [{subnet: 169.254.10.0/28}]}
    labels: {team: ops}
`;

describe('networks, as Compose makes them', () => {
  it('puts a service without network_mode or networks on the stack default network, reachable by its name', () => {
    const s = load(GITEA);
    expect(s.services.db?.spec).toMatchObject({ networkMode: 'gitea_default', networks: [{ network: 'gitea_default', aliases: ['db'] }] });
    expect(Object.keys(s.networks)).toEqual(['default', 'front']);
    expect(s.networks.default).toMatchObject({ name: 'gitea_default', driver: 'bridge', external: false });
    expect(s.networks.front).toMatchObject({ name: 'gitea_front', ipam: { config: [{ subnet: '169.254.10.0/28' }] }, labels: { team: 'ops' } });
  });

  it('joins the declared networks, the highest priority first, with the service name (and its hostname) among the aliases', () => {
    const nginx = load(GITEA).services.nginx?.spec;
    expect(nginx?.networks).toEqual([
      { network: 'gitea_front', aliases: ['edge', 'nginx', 'proxy'], priority: 10 },
      { network: 'gitea_default', aliases: ['edge', 'nginx'] },
    ]);
    expect(nginx).toMatchObject({ networkMode: 'gitea_front', links: ['gitea-server-1:gitea'], extraHosts: ['host.docker.internal:169.254.1.1', 'metadata:169.254.1.2'], dns: ['169.254.1.53'], hostname: 'edge' });
  });

  it('network_mode service:<name> shares that service\'s container, and comes after it', () => {
    const s = load(GITEA);
    expect(s.services.sidecar?.spec.networkMode).toBe('container:gitea-server-1');
    expect(s.services.sidecar?.spec.networks).toBeUndefined();
    expect(s.services.sidecar?.dependsOn).toEqual([{ service: 'server', condition: 'service_started' }]);
    expect(s.services.nginx?.dependsOn).toEqual([{ service: 'server', condition: 'service_started' }]);
  });

  it('creates the containers with the Docker API fields Compose uses', () => {
    const nginx = load(GITEA).services.nginx?.spec;
    const o = toCreateOptions('gitea-nginx', nginx!, {});
    expect(o.HostConfig).toMatchObject({ NetworkMode: 'gitea_front', Links: ['gitea-server-1:gitea'], ExtraHosts: ['host.docker.internal:169.254.1.1', 'metadata:169.254.1.2'], Dns: ['169.254.1.53'] });
    expect(o.NetworkingConfig).toEqual({ EndpointsConfig: { gitea_front: { Aliases: ['edge', 'nginx', 'proxy'] } } });
    expect(o.Hostname).toBe('edge');
  });

  it('an external network keeps its own name and is never created', () => {
    const s = load(`name: x\nservices:\n  web:\n    image: ${img('web')}\n    networks: [proxy]\nnetworks:\n  proxy: {external: true, name: traefik_proxy}\n`);
    expect(s.networks.proxy).toMatchObject({ name: 'traefik_proxy', external: true });
    const plan = planChanges({ desired: s, actual: groupByService('x', []), applied: {}, held: {}, prune: false });
    expect(plan.networks).toEqual([expect.objectContaining({ name: 'traefik_proxy', action: 'none', cause: 'external' })]);
    expect(plan.steps[0]?.to?.networks).toEqual([expect.objectContaining({ name: 'traefik_proxy', external: true })]);
  });

  it('a service attachment is part of the spec hash; the network definition is not', () => {
    const a = load(GITEA);
    const b = load(GITEA.replace('{aliases: [proxy], priority: 10}', '{aliases: [edge-proxy], priority: 10}'));
    const c = load(GITEA.replace('labels: {team: ops}', 'labels: {team: platform}'));
    expect(b.services.nginx?.hash).not.toBe(a.services.nginx?.hash);
    expect(c.services.nginx?.hash).toBe(a.services.nginx?.hash);
  });
});

describe('networks in the plan', () => {
  const s = load(GITEA);
  const observed = (over: Record<string, { hash: string; containers?: string[] }>) => ({ ...groupByService('gitea', []), networks: Object.fromEntries(Object.entries(over).map(([name, o]) => [name, { name, hash: o.hash, containers: o.containers ?? [] }])) });
  const defaults = { gitea_default: { hash: networkHash(s.networks.default!) }, gitea_front: { hash: networkHash(s.networks.front!) } };

  it.each([
    ['missing networks are created (by the first transaction that needs them)', {}, false, [['gitea_default', 'create', 'new'], ['gitea_front', 'create', 'new']]],
    ['existing ones with the same definition are left alone', defaults, false, [['gitea_default', 'none', 'in-sync'], ['gitea_front', 'none', 'in-sync']]],
    ['an unused network of the agent is removed only when pruning', { ...defaults, gitea_old: { hash: 'x' } }, true, [['gitea_default', 'none', 'in-sync'], ['gitea_front', 'none', 'in-sync'], ['gitea_old', 'remove', 'orphan']]],
    ['and kept without pruning', { ...defaults, gitea_old: { hash: 'x' } }, false, [['gitea_default', 'none', 'in-sync'], ['gitea_front', 'none', 'in-sync'], ['gitea_old', 'none', 'orphan']]],
  ])('%s', (_name, seen, prune, expected) => {
    const plan = planChanges({ desired: s, actual: observed(seen), applied: {}, held: {}, prune });
    expect(plan.networks.map((n) => [n.name, n.action, n.cause])).toEqual(expected);
  });

  it('a network whose definition changed is not recreated under its containers: explained, and its services wait', () => {
    const plan = planChanges({ desired: s, actual: observed({ ...defaults, gitea_front: { hash: 'an-older-definition' } }), applied: {}, held: {}, prune: false });
    expect(plan.networks.find((n) => n.name === 'gitea_front')).toMatchObject({ action: 'none', cause: 'changed', reasons: [expect.stringContaining('give it a new name')] });
    expect(plan.steps.find((x) => x.service === 'nginx')).toMatchObject({ action: 'none', cause: 'blocked' });
    expect(plan.steps.find((x) => x.service === 'db')).toMatchObject({ action: 'create', cause: 'new' });
  });
});

describe('network_mode service:<name> in the plan', () => {
  it('is recreated when the service whose namespace it shares is', () => {
    const base = (v: string) => `name: x\nservices:\n  vpn:\n    image: reg.example:5000/vpn:${v}@${D}\n  app:\n    image: ${img('app')}\n    network_mode: service:vpn\n`;
    const before = load(base('1.0.0'));
    const after = load(base('1.1.0'));
    const running = Object.values(before.services).map((svc) => ({
      id: `id-${svc.name}` as never,
      name: `x-${svc.name}`,
      image: svc.spec.image,
      imageId: 'sha256:x',
      labels: { 'io.gitops-agent.managed': 'true', 'io.gitops-agent.stack': 'x', 'io.gitops-agent.service': svc.name, 'io.gitops-agent.spec-hash': svc.hash },
      status: 'running' as const,
      exitCode: 0,
      oomKilled: false,
      error: '',
      health: 'none' as const,
      healthOutput: '',
      hasHealthcheck: false,
      restartCount: 0,
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: '',
      restartPolicy: 'no' as const,
    }));
    const applied = Object.fromEntries(Object.values(before.services).map((svc) => [svc.name, { hash: svc.hash, spec: svc.spec, agent: svc.agent, dependsOn: svc.dependsOn, revision: 'r0', at: 't' }]));
    const plan = planChanges({ desired: after, actual: groupByService('x', running), applied, held: {}, prune: false });
    expect(plan.steps.map((s) => [s.service, s.action, s.cause, s.wave])).toEqual([['vpn', 'update', 'changed', 0], ['app', 'update', 'changed', 1]]);
    expect(plan.steps[1]?.reasons).toEqual(['shares the network namespace of x-vpn-1, which is recreated']);
  });
});

describe('Compose forms that used to be accepted and dropped', () => {
  it('volume.nocopy reaches the engine', () => {
    const s = load(`name: x\nservices:\n  web:\n    image: ${img('web')}\n    volumes: [{type: volume, source: data, target: /data, volume: {nocopy: true}}]\nvolumes:\n  data: {labels: {backup: nightly}}\n`);
    const web = s.services.web!;
    expect(web.spec.volumes[0]).toEqual({ type: 'volume', source: 'x_data', target: '/data', readOnly: false, noCopy: true });
    expect(toCreateOptions('x-web', web.spec, {}).HostConfig?.Mounts?.[0]).toMatchObject({ VolumeOptions: { NoCopy: true } });
    // Top-level volume labels are given to the volume the transaction creates.
    const plan = planChanges({ desired: s, actual: groupByService('x', []), applied: {}, held: {}, prune: false });
    expect(plan.steps[0]?.to?.volumeLabels).toEqual({ x_data: { backup: 'nightly' } });
  });

  it('depends_on required: false lets a dependency be absent; restart: true recreates with it', () => {
    const s = load(`name: x\nservices:\n  web:\n    image: ${img('web')}\n    depends_on:\n      cache: {condition: service_started, required: false}\n      db: {condition: service_started, restart: true}\n  db:\n    image: ${img('db')}\n`);
    expect(s.services.web?.dependsOn).toEqual([{ service: 'cache', condition: 'service_started', required: false }, { service: 'db', condition: 'service_started', restart: true }]);
  });
});

describe('runtime options, as docker compose sets them', () => {
  const yaml = `name: x
services:
  app:
    image: ${img('app')}
    working_dir: /srv
    expose: [9000, "53/udp"]
    tty: true
    stdin_open: true
    read_only: true
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    group_add: [audio]
    sysctls: {net.core.somaxconn: 1024}
    ulimits: {nofile: {soft: 1024, hard: 4096}, nproc: 512}
    shm_size: 64m
    mem_limit: 512m
    memswap_limit: 1g
    cpus: "0.5"
    cpu_shares: 512
    cpuset: "0-1"
    pids_limit: 200
    oom_score_adj: -100
    devices: ["/dev/fuse:/dev/fuse:rwm", "/dev/null"]
    tmpfs: ["/run:size=64m", /tmp]
    pid: service:db
    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
    deploy: {resources: {reservations: {memory: 128m}, limits: {pids: 200}}}
  db:
    image: ${img('db')}
`;
  it('maps every key to its HostConfig field', () => {
    const s = load(yaml);
    const o = toCreateOptions('x-app', s.services.app!.spec, {});
    expect(o).toMatchObject({ WorkingDir: '/srv', Tty: true, OpenStdin: true, ExposedPorts: { '9000/tcp': {}, '53/udp': {} } });
    expect(o.HostConfig).toMatchObject({
      ReadonlyRootfs: true,
      CapAdd: ['NET_ADMIN'],
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      GroupAdd: ['audio'],
      Sysctls: { 'net.core.somaxconn': '1024' },
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 4096 }, { Name: 'nproc', Soft: 512, Hard: 512 }],
      ShmSize: 64 * 1024 ** 2,
      Memory: 512 * 1024 ** 2,
      MemorySwap: 1024 ** 3,
      MemoryReservation: 128 * 1024 ** 2,
      NanoCpus: 500_000_000,
      CpuShares: 512,
      CpusetCpus: '0-1',
      PidsLimit: 200,
      OomScoreAdj: -100,
      Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }, { PathOnHost: '/dev/null', PathInContainer: '/dev/null', CgroupPermissions: 'rwm' }],
      Tmpfs: { '/run': 'size=64m', '/tmp': '' },
      PidMode: 'container:x-db-1',
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    });
    expect(s.services.app?.dependsOn).toEqual([{ service: 'db', condition: 'service_started' }]);
  });

  it.each([
    ['a limit said twice, differently', 'mem_limit: 512m\n    deploy: {resources: {limits: {memory: 1g}}}', 'say different things'],
    ['a swap limit without a memory limit', 'memswap_limit: 1g', 'needs mem_limit'],
    ['a size that is not one', 'shm_size: lots', 'a size like 512m or 2g'],
  ])('refuses %s', (_name, extra, words) => {
    const r = loadDesiredState({ files: [{ path: 'c.yaml', content: `name: x\nservices:\n  app:\n    image: ${img('app')}\n    ${extra}\n` }], revision: 'dir:n' as Revision, env: {}, defaultStack: 'x' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toContain(words);
  });
});

describe('port ranges', () => {
  it('expand into one binding per port, as Compose publishes them', () => {
    const s = load(`name: x\nservices:\n  web:\n    image: ${img('web')}\n    ports: ["127.0.0.1:8000-8002:9000-9002/udp", "7000-7001"]\n`);
    expect(s.services.web?.spec.ports).toEqual([
      { hostIp: '127.0.0.1', hostPort: 8000, containerPort: 9000, protocol: 'udp' },
      { hostIp: '127.0.0.1', hostPort: 8001, containerPort: 9001, protocol: 'udp' },
      { hostIp: '127.0.0.1', hostPort: 8002, containerPort: 9002, protocol: 'udp' },
      { hostIp: '', hostPort: 0, containerPort: 7000, protocol: 'tcp' },
      { hostIp: '', hostPort: 0, containerPort: 7001, protocol: 'tcp' },
    ]);
  });
});

describe('profiles', () => {
  const yaml = `name: x\nservices:\n  web:\n    image: ${img('web')}\n  debug:\n    image: ${img('debug')}\n    profiles: [debug]\n  tools:\n    image: ${img('tools')}\n    profiles: [ops, debug]\n`;
  const withProfiles = (profiles: string[], content = yaml) => loadDesiredState({ files: [{ path: 'c.yaml', content }], revision: 'dir:p' as Revision, env: {}, defaultStack: 'x', profiles });

  it.each([
    [[], ['web']],
    [['debug'], ['debug', 'tools', 'web']],
    [['ops'], ['tools', 'web']],
  ])('with %j active, the stack is %j', (profiles, services) => {
    const r = withProfiles(profiles);
    expect(r.ok && Object.keys(r.state.services)).toEqual(services);
  });

  it('a service that needs one of an inactive profile is refused, with what to do', () => {
    const r = withProfiles([], `${yaml}  app:\n    image: ${img('app')}\n    depends_on: [debug]\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toContain('runs only with the profile debug');
  });
});
