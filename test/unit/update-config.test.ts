/**
 * `deploy.update_config` and `deploy.rollback_config`: what is read, what is refused, and every
 * reason a service cannot run start-first, at its file and line.
 */
import { describe, expect, it } from 'vitest';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { Revision } from '../../agent/core/ids.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function load(content: string) {
  return loadDesiredState({ files: [{ path: 'stack.yaml', content }], revision: 'dir:test' as Revision, env: {}, defaultStack: 'test' });
}

const svc = (body: string, tail = '') => `services:\n  web:\n    image: reg.example:5000/web:1.0.0@${DIGEST}\n${body}${tail}`;
const startFirst = '    deploy:\n      update_config:\n        order: start-first\n';

function agentOf(content: string) {
  const r = load(content);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.line}: ${i.message}`).join('\n'));
  return r.state.services.web!.agent;
}

function refusals(content: string): [string, number, string][] {
  const r = load(content);
  if (r.ok) throw new Error(`expected a refusal for:\n${content}`);
  return r.issues.filter((i) => i.severity !== 'warning').map((i) => [i.pointer, i.line ?? 0, i.message]);
}

describe('update_config and rollback_config', () => {
  it('stop-first by default, as Compose', () => {
    expect(agentOf(svc('')).startFirst).toBeUndefined();
    expect(agentOf(svc('    deploy:\n      update_config:\n        order: stop-first\n')).startFirst).toBeUndefined();
  });

  it('start-first with the default drain, or x-agent.drain', () => {
    expect(agentOf(svc(startFirst)).startFirst).toEqual({ drainMs: 5000 });
    expect(agentOf(svc(`${startFirst}    x-agent:\n      drain: 2s\n`)).startFirst).toEqual({ drainMs: 2000 });
  });

  it('monitor is the stabilisation window of the gate; rollback_config.monitor that of the rollback check', () => {
    const a = agentOf(svc('    deploy:\n      update_config:\n        monitor: 30s\n        failure_action: rollback\n        parallelism: 1\n        delay: 0s\n      rollback_config:\n        monitor: 3s\n        failure_action: pause\n'));
    expect(a.health.stabilizationMs).toBe(30_000);
    expect(a.rollbackMonitorMs).toBe(3000);
  });

  it.each<[string, string, string, RegExp]>([
    ['failure_action: continue', '    deploy:\n      update_config:\n        failure_action: continue\n', '/services/web/deploy/update_config/failure_action', /keeping a failed version running is not offered/],
    ['a delay between batches', '    deploy:\n      update_config:\n        delay: 10s\n', '/services/web/deploy/update_config/delay', /no second batch/],
    ['max_failure_ratio', '    deploy:\n      rollback_config:\n        max_failure_ratio: 0.5\n', '/services/web/deploy/rollback_config/max_failure_ratio', /one container per service/],
    ['a rollback failure_action other than pause', '    deploy:\n      rollback_config:\n        failure_action: rollback\n', '/services/web/deploy/rollback_config/failure_action', /records rollback-failed/],
    ['a start-first rollback of a stop-first update', '    deploy:\n      rollback_config:\n        order: start-first\n', '/services/web/deploy/rollback_config/order', /needs update_config.order: start-first/],
    ['monitor and stabilization saying different things', '    deploy:\n      update_config:\n        monitor: 5s\n    x-agent:\n      health:\n        stabilization: 6s\n', '/services/web/deploy/update_config/monitor', /keep one/],
    ['a drain without start-first', '    x-agent:\n      drain: 2s\n', '/services/web/x-agent/drain', /only read for a start-first update/],
    ['an unknown order', '    deploy:\n      update_config:\n        order: blue-green\n', '/services/web/deploy/update_config/order', /must be one of "stop-first", "start-first"/],
  ])('refuses %s, at its line', (_what, body, pointer, message) => {
    const [first] = refusals(svc(body));
    expect(first?.[0]).toBe(pointer);
    expect(first?.[1]).toBeGreaterThan(3);
    expect(first?.[2]).toMatch(message);
  });
});

describe('start-first is refused for a service that cannot run twice', () => {
  it.each<[string, string, string, string, RegExp]>([
    ['a published host port', '    ports: ["127.0.0.1:8080:80"]\n', '', '/services/web/ports', /published host port \(127\.0\.0\.1:8080\) can be bound by one of them only/],
    ['host networking', '    network_mode: host\n', '', '/services/web/network_mode', /network_mode host has no network aliases/],
    ['a fixed address', '    networks:\n      back:\n        ipv4_address: 169.254.40.5\n', 'networks:\n  back:\n    ipam:\n      config: [{subnet: 169.254.40.0/28}]\n', '/services/web/networks', /fixed address 169\.254\.40\.5/],
    ['a named volume it writes (a database)', '    volumes: [pgdata:/var/lib/postgresql/data]\n', 'volumes:\n  pgdata: {}\n', '/services/web/volumes', /named volume "pgdata".*must never be opened twice/],
    ['a writable bind', '    volumes: [/srv/uploads:/uploads]\n', '', '/services/web/volumes', /writable bind at \/uploads/],
    ['probes sent to a fixed address', '    x-agent:\n      health:\n        probes: [{http: "http://web:8080/"}]\n', '', '/services/web/x-agent/health/probes', /reaches the old container/],
    ['a backup restored on rollback', '    volumes: [data:/data]\n    x-agent:\n      sharedVolumes: [data]\n      backup:\n        volumes: [data]\n        restoreOnRollback: true\n', 'volumes:\n  data: {}\n', '/services/web/x-agent/backup/restoreOnRollback', /would lose those writes/],
    ['a shared volume it does not mount', '    x-agent:\n      sharedVolumes: [cache]\n', '', '/services/web/x-agent/sharedVolumes/0', /neither a named volume/],
  ])('%s', (_what, body, top, pointer, message) => {
    const found = refusals(svc(`${startFirst}${body}`, top));
    expect(found.map(([p]) => p)).toContain(pointer);
    const hit = found.find(([p]) => p === pointer)!;
    expect(hit[1]).toBeGreaterThan(3);
    expect(hit[2]).toMatch(message);
  });

  it('allows a volume the x-agent block declares shared, read-only mounts, and a service on project networks', () => {
    const a = agentOf(svc(`${startFirst}    volumes: [cache:/cache, static:/static:ro]\n    x-agent:\n      sharedVolumes: [cache]\n`, 'volumes:\n  cache: {}\n  static: {}\n'));
    expect(a.startFirst).toEqual({ drainMs: 5000 });
  });
});
