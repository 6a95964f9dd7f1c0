import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, loadInterpolationEnv } from '../../agent/config/config.js';
import { loadDesiredState } from '../../agent/desired/load.js';
import { resolvePolicy, type OperatorPolicy } from '../../agent/policy/policy.js';
import { metadataAddress } from '../../agent/policy/check.js';
import { redactJsonStrings, redactText } from '../../agent/source/git/credentials.js';
import { computeConditions } from '../../agent/reconcile/conditions.js';
import type { Revision } from '../../agent/core/ids.js';
import type { AgentState } from '../../agent/model/agent-state.js';
import { REFERENCE_TREE } from './fakes/reference-stack.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const rev = 'dir:test' as Revision;
const own = { stateDir: '/var/lib/gitops-agent', backupDir: '/srv/backups', files: ['/etc/gitops-agent/env'] };
const DEFAULT = resolvePolicy(undefined, '', own);

function denied(content: string, policy: OperatorPolicy = DEFAULT) {
  const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: rev, env: {}, defaultStack: 'test', policy });
  if (r.ok) return [];
  return r.issues.filter((i) => i.severity !== 'warning').map((i) => `${i.line} ${i.policy ?? '-'} ${i.message.replace(/^denied by the operator's policy \([^)]*\): /, '')}`);
}

const web = (body: string, top = '') => `name: test\nservices:\n  web:\n    image: reg.example:5000/web:1.0.0@${DIGEST}\n${body}${top}`;

describe('the operator policy, with its defaults', () => {
  it('passes the reference stack', () => {
    const content = readFileSync(new URL('../../desired-state/compose.yaml', import.meta.url), 'utf8');
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: rev, env: { POSTGRES_PASSWORD: 'pw' }, defaultStack: 'x', policy: DEFAULT, tree: REFERENCE_TREE });
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it('refuses each dangerous form, at its line, naming the setting', () => {
    const issues = denied(
      web(
        [
          '    network_mode: host', // 5
          '    user: "0"',
          '    privileged: true',
          '    cap_add: [SYS_ADMIN]',
          '    pid: host',
          '    security_opt: ["seccomp=unconfined"]', // 10
          '    devices: ["/dev/sda:/dev/sda"]',
          '    volumes:',
          '      - /:/host',
          '      - /var/run/docker.sock:/var/run/docker.sock',
          '      - /etc/localtime:/etc/localtime', // 15
          '      - gitea_postgres:/d',
          '    x-agent:',
          '      health:',
          '        probes:',
          '          - http: http://169.254.169.254/latest/meta-data/', // 20
          '          - tcp: 10.0.0.1:22',
          '',
        ].join('\n'),
        'volumes:\n  gitea_postgres: {external: true}\n',
      ),
    );
    expect(issues).toEqual([
      expect.stringMatching(/^5 networkModes network_mode "host"/),
      expect.stringMatching(/^6 allowRootUser runs as root/),
      expect.stringMatching(/^7 allowPrivileged /),
      expect.stringMatching(/^8 capabilities adds the capability SYS_ADMIN/),
      expect.stringMatching(/^9 allowHostNamespaces pid: host/),
      expect.stringMatching(/^10 securityOptions security_opt "seccomp=unconfined"/),
      expect.stringMatching(/^11 devices maps the host device \/dev\/sda/),
      expect.stringMatching(/^13 binds binds the host path \/, which is not under an allowed path/),
      expect.stringMatching(/^14 binds binds the host path \/var\/run\/docker.sock/),
      expect.stringMatching(/^15 binds binds \/etc\/localtime read-write/),
      expect.stringMatching(/^16 volumes.names mounts the volume "gitea_postgres", which is not a volume of this stack/),
      expect.stringMatching(/^20 probeHosts probes 169.254.169.254, a cloud metadata address: never allowed/),
      expect.stringMatching(/^21 probeHosts probes 10.0.0.1, which is not among/),
      expect.stringMatching(/^23 volumes.names uses the existing volume "gitea_postgres"/),
    ]);
  });

  it('requires digests, and refuses a local volume that binds a host path', () => {
    expect(denied('name: test\nservices:\n  web:\n    image: nginx:1.27\n')).toEqual([expect.stringMatching(/^4 requireDigest image "nginx:1.27" is not pinned by digest/)]);
    expect(denied(web('    volumes: [data:/d]\n', 'volumes:\n  data:\n    driver_opts: {type: none, o: bind, device: /etc}\n'))).toEqual([expect.stringMatching(/^8 binds binds the host path \/etc/)]);
  });

  it('allows what the stack owns: its networks, its volumes, another service network namespace, the repository files', () => {
    const ok = web('    volumes: [data:/d]\n    networks: [front]\n  side:\n    image: reg.example:5000/side:1@' + DIGEST + '\n    network_mode: service:web\n', 'volumes:\n  data: {}\nnetworks:\n  front: {}\n');
    expect(denied(ok)).toEqual([]);
    expect(denied(web('    network_mode: container:someone-elses\n'))).toEqual([expect.stringMatching(/^5 networkModes network_mode "container:someone-elses" \(container\)/)]);
  });

  it('a job: its image among the job images, no host network', () => {
    const job = (image: string, net: string) => `name: test\nx-agent:\n  jobs:\n    renew:\n      schedule: "0 3 * * 1"\n      certbot:\n        image: ${image}\n        args: [renew]\n        networkMode: ${net}\nservices: {}\n`;
    expect(denied(job('docker.io/certbot/certbot:v2.11.0', 'bridge'))).toEqual([]);
    expect(denied(job('docker.io/evil/certbot:v1', 'host'))).toEqual([expect.stringMatching(/^7 jobImages job image docker.io\/evil\/certbot is not among/), expect.stringMatching(/^9 networkModes a job on the host network/)]);
  });
});

describe('the operator policy against the forms a review found', () => {
  it('a local volume mounting a disk, proc or an overlay; a trailing slash; another namespace; a network named like another project', () => {
    const vol = (opts: string) => denied(web('    volumes: [d:/d]\n', `volumes:\n  d:\n    driver_opts: ${opts}\n`));
    expect(vol('{type: ext4, device: /dev/sda1}')).toEqual([expect.stringMatching(/volumes.types the local driver would mount a ext4 filesystem from \/dev\/sda1/)]);
    expect(vol('{type: proc, device: proc}')).toEqual([expect.stringMatching(/volumes.types/)]);
    expect(vol('{type: overlay, o: "lowerdir=/"}')).toEqual([expect.stringMatching(/volumes.types/)]);
    expect(vol('{type: nfs, o: "addr=10.0.0.2", device: ":/export"}')).toEqual([]);
    const wide = resolvePolicy({ binds: ['/'] }, 'config.yaml', own);
    expect(denied(web('    volumes: ["/var/:/v"]\n'), wide)).toEqual([expect.stringMatching(/binds \/var, which holds/)]);
    expect(denied(web('    volumes: ["/var/lib:/v"]\n'), resolvePolicy({ binds: ['/var/lib'] }, 'config.yaml', own))).toEqual([expect.stringMatching(/binds \/var\/lib, which holds \/var\/lib\/docker/)]);
    expect(denied(web('    pid: container:othercompose-db-1\n'))).toEqual([expect.stringMatching(/^5 networkModes pid: container:othercompose-db-1 joins the namespace of a container outside the stack/)]);
    expect(denied(web('    network_mode: container:test-side-1\n    container_name: test-web\n'))).toEqual([expect.stringMatching(/networkModes network_mode "container:test-side-1" \(container\)/)]);
    expect(denied(web('    networks: [x]\n', 'networks:\n  x: {name: otherproj_default}\n'))).toEqual([expect.stringMatching(/externalNetworks network name "otherproj_default" is not one of this stack's/)]);
    expect(denied(web('    user: "00"\n'))).toEqual([expect.stringMatching(/allowRootUser runs as root/)]);
  });

  it('metadata addresses in any spelling', () => {
    const p = resolvePolicy({ probeHosts: ['*'] }, 'config.yaml', own);
    for (const target of ['http: http://[::ffff:169.254.169.254]/', 'tcp: "2852039166:80"', 'tcp: "169.254.43518:80"', 'http: "http://[fd00:ec2:0:0:0:0:0:254]/"']) {
      expect(denied(web(`    x-agent:\n      health:\n        probes:\n          - ${target}\n`), p), target).toEqual([expect.stringMatching(/a cloud metadata address: never allowed/)]);
    }
  });
});

describe('the operator policy, as the operator widens it', () => {
  it('binds: an allowed prefix never reaches a denied path unless a rule names it; the agent files stay denied', () => {
    const p = resolvePolicy({ binds: ['/', { path: '/var/run/docker.sock', readOnly: true }, '/srv'] }, 'config.yaml', own);
    const bind = (spec: string) => denied(web(`    volumes: ["${spec}"]\n`), p);
    expect(bind('/home/me/data:/d')).toEqual([]);
    expect(bind('/etc:/e:ro')).toEqual([expect.stringMatching(/binds \/etc, a path the policy denies unless a binds rule names it/)]);
    expect(bind('/var:/v:ro')).toEqual([expect.stringMatching(/binds \/var, which holds \/var\/run\/docker.sock/)]);
    expect(bind('/var/run/docker.sock:/s:ro')).toEqual([]);
    expect(bind('/var/run/docker.sock:/s')).toEqual([expect.stringMatching(/read-write; the policy allows it read-only only/)]);
    expect(bind('/srv/data:/d')).toEqual([]);
    expect(bind('/srv/backups/x:/b')).toEqual([expect.stringMatching(/inside \/srv\/backups/)]);
    expect(bind('/var/lib/gitops-agent/state.json:/s:ro')).toEqual([expect.stringMatching(/inside \/var\/lib\/gitops-agent/)]);
    expect(bind('/etc/gitops-agent/env:/e:ro')).toEqual([expect.stringMatching(/inside \/etc/)]);
  });

  it('each setting opens exactly its form', () => {
    const p = resolvePolicy({ networkModes: ['host'], allowPrivileged: true, capabilities: ['cap_net_admin'], allowRootUser: true, probeHosts: ['*'], stacks: ['prod-*'] }, 'config.yaml', own);
    const body = '    network_mode: host\n    privileged: true\n    user: root\n    cap_add: [NET_ADMIN, SYS_ADMIN]\n    x-agent:\n      health:\n        probes:\n          - tcp: 10.0.0.1:22\n          - http: http://[fd00:ec2::254]/\n';
    expect(denied(web(body), p)).toEqual([expect.stringMatching(/^1 stacks stack "test" is not among the stacks this host runs \(prod-\*\)/), expect.stringMatching(/^8 capabilities adds the capability SYS_ADMIN/), expect.stringMatching(/^13 probeHosts probes fd00:ec2::254, a cloud metadata address/)]);
  });

  it('refuses an unknown or malformed setting by name', () => {
    expect(() => resolvePolicy({ allowPriviledged: true }, 'config.yaml', own)).toThrow(/config.yaml: policy.allowPriviledged: unknown setting/);
    expect(() => resolvePolicy({ binds: ['srv'] }, 'config.yaml', own)).toThrow(/policy.binds: "srv" is not an absolute path/);
    expect(() => resolvePolicy({ networkModes: ['hostt'] }, 'config.yaml', own)).toThrow(/policy.networkModes: "hostt" is not one of/);
    expect(() => resolvePolicy({ volumes: { name: ['x'] } }, 'config.yaml', own)).toThrow(/policy.volumes.name: unknown setting/);
  });

  it('knows the metadata endpoints of the clouds', () => {
    for (const h of ['169.254.169.254', '169.254.170.2', 'metadata.google.internal', '100.100.100.200', 'fd00:ec2::254']) expect(metadataAddress(h)).toBeDefined();
    for (const h of ['169.254.100.5', '127.0.0.1', 'localhost']) expect(metadataAddress(h)).toBeUndefined();
  });
});

describe('the policy in the configuration', () => {
  it('comes from policy: or from the file policyFile names (AGENT_POLICY_FILE), never both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'networkModes: [host]\n');
    const inline = join(dir, 'inline.yaml');
    writeFileSync(inline, `stateDir: ${dir}/state\npolicy:\n  allowPrivileged: true\n`);
    expect((await loadConfig({ config: inline }, {})).policy).toMatchObject({ allowPrivileged: true, networkModes: ['bridge', 'none', 'service'], origin: inline });
    const fromFile = await loadConfig({ stateDir: join(dir, 'state') }, { AGENT_POLICY_FILE: policyFile });
    expect(fromFile.policy).toMatchObject({ allowPrivileged: false, networkModes: ['host'], origin: policyFile });
    expect(fromFile.policy.deniedPaths).toEqual(expect.arrayContaining([join(dir, 'state'), policyFile]));
    await expect(loadConfig({ config: inline }, { AGENT_POLICY_FILE: policyFile })).rejects.toThrow(/policy and policyFile are both set/);
    expect((await loadConfig({ stateDir: join(dir, 'state') }, {})).policy.origin).toBe('the default policy');
  });
});

describe('a refusal by the policy in the conditions', () => {
  it('is Stalled/PolicyDenied, naming the first violation', () => {
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content: web('    privileged: true\n') }], revision: rev, env: {}, defaultStack: 'test', policy: DEFAULT });
    if (r.ok) throw new Error('expected a refusal');
    const state = { invalid: { kind: 'validation', revision: rev, issues: r.issues, at: '2026-12-01T00:00:00Z' }, services: {}, conditions: [] } as unknown as AgentState;
    const stalled = computeConditions({ state, now: '2026-12-01T00:00:00Z' }).find((c) => c.type === 'Stalled');
    expect(stalled).toMatchObject({ status: 'True', reason: 'PolicyDenied' });
    expect(stalled?.message).toMatch(/refused by the operator's policy \(1 violation\): compose.yaml:5: denied by the operator's policy \(allowPrivileged/);
  });
});

describe('interpolation reads the env file and the variables the operator allows, never the agent own', () => {
  it('filters the environment by interpolation.allowEnv, and refuses naming an agent variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interp-'));
    const envFile = join(dir, 'secrets.env');
    writeFileSync(envFile, 'DB_PASSWORD=from-the-file\n');
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, `stateDir: ${dir}/state\nenvFile: ${envFile}\nwebhook: {secretEnv: HOOK_SECRET}\ninterpolation: {allowEnv: ['*']}\n`);
    const env = { TAG: '1.2', AGENT_GIT_PASSWORD: 'git-pw', AWS_SECRET_ACCESS_KEY: 'aws-key', HOOK_SECRET: 'hook', RESTIC_PASSWORD: 'r', DB_PASSWORD: 'from-env' };
    const all = await loadInterpolationEnv(await loadConfig({ config: cfg }, env), env);
    expect(all).toEqual({ TAG: '1.2', DB_PASSWORD: 'from-the-file' });
    const none = await loadConfig({ stateDir: join(dir, 'state') }, env);
    expect(await loadInterpolationEnv(none, env)).toEqual({});
    const one = await loadConfig({ stateDir: join(dir, 'state') }, { ...env, AGENT_INTERPOLATE_ENV: 'TAG' });
    expect(await loadInterpolationEnv(one, env)).toEqual({ TAG: '1.2' });
    await expect(loadConfig({ stateDir: join(dir, 'state') }, { AGENT_INTERPOLATE_ENV: 'AGENT_GIT_PASSWORD' })).rejects.toThrow(/interpolation.allowEnv: AGENT_GIT_PASSWORD is one of the agent's own variables/);
  });

  it('an unset variable is named with where it may come from, and its value is never quoted', () => {
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content: web('    environment: {PW: "${AGENT_GIT_PASSWORD}"}\n') }], revision: rev, env: {}, defaultStack: 'test', policy: DEFAULT });
    expect(r.ok ? [] : r.issues.map((i) => i.message)).toEqual([expect.stringMatching(/variable AGENT_GIT_PASSWORD is not set; set it in the env file \(envFile\), allow it from the agent's environment \(interpolation.allowEnv\)/)]);
  });
});

describe('secrets by name, never by value', () => {
  it('a message about an interpolated value names the variable instead of quoting it', () => {
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content: web('    image: "${IMAGE_REF}"\n    user: "${RUN_AS}"\n').replace(/ {4}image: reg[^\n]*\n/, '') }], revision: rev, env: { IMAGE_REF: 'Not_An/Image:hunter2-secret', RUN_AS: 'root' }, defaultStack: 'test', policy: DEFAULT });
    const text = r.ok ? '' : r.issues.map((i) => i.message).join('\n');
    expect(text).toMatch(/\$\{IMAGE_REF\}/);
    expect(text).toMatch(/"user: \$\{RUN_AS\}"/);
    expect(text).not.toContain('hunter2-secret');
  });

  it('redaction covers the URL-encoded and base64 forms, at any alignment', () => {
    const secret = 'p@ss w0rd/with+signs';
    for (const prefix of ['', 'u:', 'us:', 'use:']) {
      const header = `Authorization: Basic ${Buffer.from(`${prefix}${secret}`).toString('base64')}`;
      expect(redactText(header, [secret])).toContain('[redacted]');
    }
    expect(redactText(`https://h/?q=${encodeURIComponent(secret)}`, [secret])).toBe('https://h/?q=[redacted]');
    expect(redactText(`said ${secret}`, [secret])).toBe('said [redacted]');
    // as a JSON log line holds it: quotes and backslashes escaped
    const quoted = 'pa"ss\\w0rd';
    expect(redactText(JSON.stringify({ msg: `token ${quoted}` }), [quoted])).toBe('{"msg":"token [redacted]"}');
    // a log line: only its strings, so that a value like 1000 leaves the numbers alone
    expect(redactJsonStrings(JSON.stringify({ intervalMs: 10000, ok: true, msg: 'uid 1000 set' }), ['1000', 'true'])).toBe('{"intervalMs":10000,"ok":true,"msg":"uid [redacted] set"}');
  });
});
