import { describe, expect, it } from 'vitest';
import type { ContainerId, Revision } from '../../agent/core/ids.js';
import { LABELS } from '../../agent/core/labels.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { ContainerInfo } from '../../agent/model/actual.js';
import { groupByService } from '../../agent/observe/observe.js';
import { planChanges } from '../../agent/plan/plan.js';

const D = `sha256:${'a'.repeat(64)}`;
const img = (n: string) => `reg.example:5000/${n}:1.0.0@${D}`;
const load = (content: string) => loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: 'dir:n' as Revision, env: {}, defaultStack: 'x' });

describe("Compose's container names", () => {
  it('container_name names the container; service:<name> and links follow it', () => {
    const r = load(`services:
  vpn:
    image: ${img('vpn')}
    container_name: wireguard
  app:
    image: ${img('app')}
    network_mode: service:vpn
  web:
    image: ${img('web')}
    links: [db]
  db:
    image: ${img('db')}
`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.state.services.vpn?.spec.containerName).toBe('wireguard');
    expect(r.state.services.app?.spec.networkMode).toBe('container:wireguard');
    expect(r.state.services.web?.spec.links).toEqual(['x-db-1:db']);
    expect(r.state.services.db?.spec.containerName).toBeUndefined();
  });

  it('refuses two services with one container_name, and Compose labels set by hand', () => {
    const r = load(`services:
  a:
    image: ${img('a')}
    container_name: same
  b:
    image: ${img('b')}
    container_name: same
    labels: {com.docker.compose.project: other}
`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.line}: ${i.message}`)).toEqual([
      '7: container name "same" is already used by service "a" (compose.yaml:4)',
      expect.stringMatching(/^8: labels starting with "com.docker.compose." are set by the agent/),
    ]);
  });
});

describe('the live container of a service', () => {
  const c = (name: string): ContainerInfo => ({ id: `id-${name}` as ContainerId, name, image: 'i', imageId: 'i', labels: { [LABELS.service]: 'web' }, status: 'running', exitCode: 0, oomKilled: false, error: '', health: 'none', healthOutput: '', hasHealthcheck: false, restartCount: 0, startedAt: '', finishedAt: '', restartPolicy: 'always' });

  it('takes over a docker compose container only for a service the agent runs nothing for', () => {
    const composed = (name: string, service: string): ContainerInfo => ({ ...c(name), labels: { 'com.docker.compose.project': 'x', 'com.docker.compose.service': service } });
    const s = groupByService('x', [c('x-web-1')], [composed('x_web_1', 'web'), composed('x_db_1', 'db')]).services;
    expect(s.web?.current?.name).toBe('x-web-1');
    expect(s.web?.others).toEqual([]);
    expect(s.db?.current?.name).toBe('x_db_1');
  });

  it.each([
    ['Compose name', ['x-web', 'x-web-1', 'x-web.prev-tx1'], 'x-web-1'],
    ["the agent's former name", ['x-web', 'x-web.prev-tx1'], 'x-web'],
    ['a container_name', ['edge', 'x-web.prev-tx1'], 'edge'],
    ['only a previous one: none', ['x-web.prev-tx1'], undefined],
  ])('prefers %s', (_what, names, current) => {
    const s = groupByService('x', names.map(c)).services.web;
    expect(s?.current?.name).toBe(current);
    expect(s?.others.map((o) => o.name).sort()).toEqual(names.filter((n) => n !== current).sort());
  });
});

describe('more Compose keys', () => {
  it('pull_policy, platform, an anonymous volume (kept under a stable name) and a volume driver', () => {
    const r = load(`services:
  app:
    image: ${img('app')}
    pull_policy: always
    platform: linux/arm64
    scale: 1
    volumes: [/var/cache/app, "nfs:/data"]
volumes:
  nfs:
    driver_opts: {type: nfs, o: "addr=169.254.20.1,rw", device: ":/exports/data"}
`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const app = r.state.services.app!;
    expect(app.agent.pullPolicy).toBe('always');
    expect(app.spec.platform).toBe('linux/arm64');
    expect(app.spec.volumes[0]).toEqual({ type: 'volume', source: expect.stringMatching(/^x_app_[0-9a-f]{12}$/), target: '/var/cache/app', readOnly: false });
    expect(r.state.volumes.nfs?.driver).toEqual({ name: 'local', options: { type: 'nfs', o: 'addr=169.254.20.1,rw', device: ':/exports/data' } });
  });

  it.each([
    ['scale: 3', 'not supported: 3 containers of one service'],
    ['deploy: {replicas: 2}', 'not supported: 2 containers of one service'],
    ['pull_policy: build', 'not supported: pull_policy: build'],
    ['pull_policy: daily', 'not supported: pull_policy: daily'],
    ['build: .', 'not supported: the agent deploys pinned images'],
    ['volumes_from: [other]', 'not supported: volumes_from'],
  ])('refuses %s with why', (line, message) => {
    const r = load(`services:\n  app:\n    image: ${img('app')}\n    ${line}\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => `${i.line}: ${i.message}`)).toContainEqual(expect.stringContaining(`4: ${message}`));
  });
});

describe('agent validate --allow-unset (a pull request without the host secrets)', () => {
  const content = `services:
  db:
    image: ${img('postgres')}
    environment:
      POSTGRES_PASSWORD: \${POSTGRES_PASSWORD:?set it}
      POSTGRES_USER: $USER_NAME
      PASSED_THROUGH:
`;
  it('reports each unset variable as a warning at its line, and the state is valid', () => {
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: 'dir:n' as Revision, env: {}, defaultStack: 'x', allowUnset: true });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.warnings.filter((w) => w.message.includes('--allow-unset')).map((w) => `${w.line}: ${w.message}`)).toEqual([
      '5: variable POSTGRES_PASSWORD is not set: taken as empty (--allow-unset)',
      '6: variable USER_NAME is not set: taken as empty (--allow-unset)',
      '7: environment variable PASSED_THROUGH has no value and is not set: left out (--allow-unset)',
    ]);
    expect(r.state.services.db?.spec.environment).toEqual({ POSTGRES_PASSWORD: '', POSTGRES_USER: '' });
  });

  it('without it, the same file is refused', () => {
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: 'dir:n' as Revision, env: {}, defaultStack: 'x' });
    expect(r.ok || r.issues.map((i) => i.line)).toEqual([5, 6]);
  });
});

describe('taking over, without leaving the data behind', () => {
  const info = (mounts: ContainerInfo['mounts']): ContainerInfo => ({ id: 'id-c' as ContainerId, name: 'x_app_1', image: 'i', imageId: 'i', labels: { 'com.docker.compose.project': 'x', 'com.docker.compose.service': 'app' }, status: 'running', exitCode: 0, oomKilled: false, error: '', health: 'none', healthOutput: '', hasHealthcheck: false, restartCount: 0, startedAt: '', finishedAt: '', restartPolicy: 'always', ...(mounts ? { mounts } : {}) });
  const desired = (volumes: string) => {
    const r = load(`services:\n  app:\n    image: ${img('app')}\n    volumes: [${volumes}]\nvolumes:\n  data: {}\n`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.state;
  };
  const plan = (state: ReturnType<typeof desired>, mounts: ContainerInfo['mounts']) => planChanges({ desired: state, actual: groupByService('x', [], [info(mounts)]), applied: {}, held: {}, prune: false }).steps[0];

  it('a compose project folder or anonymous volume the new container would not mount: blocked, with what to do', () => {
    const step = plan(desired('"./data:/var/lib/app"'), [{ type: 'bind', source: '/home/me/app/data', target: '/var/lib/app' }]);
    expect(step).toMatchObject({ action: 'none', cause: 'blocked' });
    expect(step?.reasons.join()).toMatch(/not taken over from docker compose yet: x_app_1 keeps \/var\/lib\/app in \/home\/me\/app\/data/);
    expect(plan(desired('/var/lib/app'), [{ type: 'volume', source: '3f2a9c', target: '/var/lib/app' }])).toMatchObject({ cause: 'blocked' });
  });

  it('the same named volume: taken over', () => {
    expect(plan(desired('"data:/var/lib/app"'), [{ type: 'volume', source: 'x_data', target: '/var/lib/app' }])).toMatchObject({ action: 'update', reasons: [expect.stringMatching(/^taken over from docker compose/)] });
  });
});
