import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDesiredState } from '../../agent/desired/load.js';
import type { Revision } from '../../agent/core/ids.js';
import { REFERENCE_TREE } from './fakes/reference-stack.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const rev = 'dir:test' as Revision;

function load(content: string, env: Record<string, string> = {}) {
  return loadDesiredState({ files: [{ path: 'stack.yaml', content }], revision: rev, env, defaultStack: 'test' });
}

function issuesOf(content: string) {
  const r = load(content);
  if (r.ok) throw new Error(`expected invalid, got valid state for:\n${content}`);
  return r.issues.filter((i) => i.severity !== 'warning');
}

const svc = (body: string) => `services:\n  web:\n    image: reg.example:5000/web:1.0.0@${DIGEST}\n${body}`;

describe('loadDesiredState: the reference stack', () => {
  it('accepts desired-state/compose.yaml with its secrets set, in dependency-relevant shape', () => {
    const content = readFileSync(new URL('../../desired-state/compose.yaml', import.meta.url), 'utf8');
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: rev, env: { POSTGRES_PASSWORD: 'pw' }, defaultStack: 'x', tree: REFERENCE_TREE });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.state.stack).toBe('gitea');
    expect(Object.keys(r.state.services)).toEqual(['db', 'nginx', 'server']);
    expect(r.state.services.server?.dependsOn).toEqual([{ service: 'db', condition: 'service_started' }]);
    expect(r.state.services.nginx?.dependsOn).toEqual([{ service: 'server', condition: 'service_started' }]);
    expect(Object.values(r.state.services).map((s) => s.agent.policy)).toEqual(['manual', 'auto', 'manual']);
    expect(r.state.services.db?.spec.volumes[0]).toEqual({ type: 'volume', source: 'gitea_postgres', target: '/var/lib/postgresql/data', readOnly: false });
    // The project network, and nothing on the host's: reachable by service name only inside it.
    expect(Object.values(r.state.services).map((s) => s.spec.networkMode)).toEqual(['gitea_gitea', 'gitea_gitea', 'gitea_gitea']);
    expect(r.state.services.server?.spec.containerName).toBe('gitea');
    expect(r.state.services.nginx?.spec.ports.map((p) => p.hostPort)).toEqual([80, 443]);
    expect(r.state.services.nginx?.spec.volumes[0]).toMatchObject({ type: 'bind', target: '/etc/nginx/conf.d', readOnly: true });
    expect(r.state.jobs['renew-certificates']?.certbot?.volumes.map((v) => v.source)).toEqual(['gitea_certs', 'gitea_acme']);
    expect(r.warnings.map((w) => w.pointer)).toEqual(['/x-agent/jobs/renew-certificates/certbot/image']);
  });

  it('reports an unset secret with its file and line, not its value', () => {
    const content = readFileSync(new URL('../../desired-state/compose.yaml', import.meta.url), 'utf8');
    const r = loadDesiredState({ files: [{ path: 'compose.yaml', content }], revision: rev, env: {}, defaultStack: 'x', tree: REFERENCE_TREE });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.filter((i) => i.severity !== 'warning').map((i) => i.pointer)).toEqual(['/services/server/environment/6', '/services/db/environment/1']);
    expect(r.issues[0]?.line).toBeGreaterThan(1);
  });
});

describe('loadDesiredState: normalisation', () => {
  it('normalises Compose short forms into one model and hashes it stably', () => {
    const a = load(svc(`    command: sh -c "echo hi"\n    environment: [A=1, B=two]\n    ports: ["127.0.0.1:8080:80/udp", 9000]\n    restart: on-failure:3\n    stop_grace_period: 1m30s\n    labels: [team=ops]\n`));
    const b = load(svc(`    labels: {team: ops}\n    stop_grace_period: 90s\n    restart: on-failure:3\n    ports: ["127.0.0.1:8080:80/udp", 9000]\n    environment: {B: two, A: 1}\n    command: ["sh", "-c", "echo hi"]\n`));
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    const s = a.state.services.web!;
    expect(s.spec.command).toEqual(['sh', '-c', 'echo hi']);
    expect(s.spec.environment).toEqual({ A: '1', B: 'two' });
    expect(s.spec.ports).toEqual([
      { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'udp' },
      { hostIp: '', hostPort: 0, containerPort: 9000, protocol: 'tcp' },
    ]);
    expect(s.spec.stopGracePeriodMs).toBe(90_000);
    expect(s.hash).toBe(b.state.services.web!.hash);
  });

  it('interpolates ${VAR}, defaults and $$', () => {
    const r = load(svc(`    environment:\n      A: \${X}\n      B: \${MISSING:-fallback}\n      C: "$$HOME"\n`), { X: 'from-env' });
    expect(r.ok && r.state.services.web!.spec.environment).toEqual({ A: 'from-env', B: 'fallback', C: '$HOME' });
  });

  it('warns, without failing, about an image not pinned by digest', () => {
    const r = load('services:\n  web:\n    image: nginx:1.27\n');
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.warnings[0]).toMatchObject({ line: 3, pointer: '/services/web/image', severity: 'warning' });
  });
});

// Each row: the YAML, then the expected [pointer, line, words of the message] of every error.
const INVALID: [string, string, [string, number, string][]][] = [
  ['YAML syntax error', 'services:\n  web: [\n', [['', 3, 'flow sequence']]],
  ['duplicate key', svc('    image: other:1\n'), [['', 4, 'unique']]],
  ['no services key', 'name: x\n', [['', 1, 'missing required key "services"']]],
  ['unknown Compose key', svc('    buidl: .\n'), [['/services/web/buidl', 4, 'unknown key "buidl"']]],
  ['build, which the agent does not do', svc('    build: .\n'), [['/services/web/build', 4, 'not supported: the agent deploys pinned images']]],
  ['wrong type', svc('    init: "yes"\n'), [['/services/web/init', 4, 'must be true or false']]],
  ['bad enum', svc('    x-agent:\n      policy: sometimes\n'), [['/services/web/x-agent/policy', 5, 'must be one of "auto", "manual"']]],
  ['bad restart', svc('    restart: maybe\n'), [['/services/web/restart', 4, 'must be no, always']]],
  ['probe with two kinds', svc('    x-agent:\n      health:\n        probes:\n          - {tcp: "h:1", exec: ["true"]}\n'), [['/services/web/x-agent/health/probes/0', 7, 'exactly one of http, tcp or exec']]],
  ['bad duration', svc('    x-agent:\n      health:\n        timeout: soon\n'), [['/services/web/x-agent/health/timeout', 6, 'duration']]],
  ['invalid image reference', 'services:\n  web:\n    image: "Bad Image::"\n', [['/services/web/image', 3, 'not a valid image reference']]],
  ['unknown dependency', svc('    depends_on: [db]\n'), [['/services/web/depends_on/0', 4, 'unknown service "db"']]],
  ['self dependency', svc('    depends_on: [web]\n'), [['/services/web/depends_on/0', 4, 'depends on itself']]],
  ['dependency cycle', `services:\n  a:\n    image: a:1@${DIGEST}\n    depends_on: [b]\n  b:\n    image: b:1@${DIGEST}\n    depends_on: [a]\n`, [['/services/a/depends_on', 4, 'dependency cycle: a -> b -> a']]],
  ['duplicate host port', `services:\n  a:\n    image: a:1@${DIGEST}\n    ports: ["8080:80"]\n  b:\n    image: b:1@${DIGEST}\n    ports: ["127.0.0.1:8080:81"]\n`, [['/services/b/ports/0', 7, 'already published by service "a"']]],
  ['relative bind leaving the directory', svc('    volumes: ["../data:/data"]\n'), [['/services/web/volumes/0', 4, 'leaves the desired-state directory']]],
  ['bind from a home directory', svc('    volumes: ["~/data:/data"]\n'), [['/services/web/volumes/0', 4, 'not supported: "~/data": a path in the home directory']]],
  ['dot-dot in bind mount', svc('    volumes: ["/srv/../etc:/data"]\n'), [['/services/web/volumes/0', 4, 'must not contain ".."']]],
  ['bind mount without a source', svc('    volumes: [{type: bind, target: /data}]\n'), [['/services/web/volumes/0', 4, 'a bind mount needs a source']]],
  ['undeclared named volume', svc('    volumes: ["data:/data"]\n'), [['/services/web/volumes/0', 4, 'not declared']]],
  ['relative container path', svc('    volumes: ["/srv:data"]\n'), [['/services/web/volumes/0', 4, 'must be absolute']]],
  ['reserved label', svc('    labels: {io.gitops-agent.stack: x}\n'), [['/services/web/labels/io.gitops-agent.stack', 4, 'reserved']]],
  ['unset variable', svc('    environment: {P: "${SECRET}"}\n'), [['/services/web/environment/P', 4, 'variable SECRET is not set']]],
  ['a host port range for one container port', svc('    ports: ["8000-8010:80"]\n'), [['/services/web/ports/0', 4, 'not supported: a host port range for one container port']]],
  ['ranges of different lengths', svc('    ports: ["8000-8002:80-81"]\n'), [['/services/web/ports/0', 4, 'different lengths']]],
  ['bad service name', `services:\n  "bad name":\n    image: a:1@${DIGEST}\n`, [['/services/bad name', 2, 'invalid name']]],
  ['empty file', '', [['', 1, 'empty']]],
  ['alias bomb', `x-a: &a [1,1,1,1,1,1,1,1,1,1]\nx-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx-e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nservices: {}\n`, [['', 2, 'alias']]],
  // refused before the parser, which 20 KiB of `[` would run out of memory
  ['flow nesting deeper than 64', `services: {}\nx-deep: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`, [['', 2, 'nest deeper than 64']]],
  ['a %YAML 1.1 directive (yes would read as true)', '%YAML 1.1\n---\nservices: {}\n', [['', 1, 'directive %YAML is refused']]],
  ['a %TAG directive', '%TAG !e! tag:example.com,2000:\n---\nservices: {}\n', [['', 1, 'directive %TAG is refused']]],
  ['a __proto__ key', svc('    labels:\n      __proto__: {polluted: "yes"}\n'), [['', 5, 'names a JavaScript object\'s prototype']]],
  ['a constructor key', 'services:\n  constructor:\n    image: x\n', [['', 2, 'prototype']]],
  ['an alias inside its own anchor', `services: {}\nx-loop: &loop [1, *loop]\n`, [['', 2, 'a cycle']]],
  ['block nesting deeper than 64', `services: {}\n${Array.from({ length: 70 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')} 1\n`, [['', 66, 'nest deeper than 64']]],
];

describe('loadDesiredState: invalid input is refused with file, line and a plain message', () => {
  it.each(INVALID)('%s', (_name, content, expected) => {
    const issues = issuesOf(content);
    expect(issues.map((i) => [i.pointer, i.line])).toEqual(expected.map(([p, l]) => [p, l]));
    issues.forEach((issue, n) => {
      expect(issue.file).toBe('stack.yaml');
      expect(issue.column).toBeGreaterThan(0);
      expect(issue.message.toLowerCase()).toContain((expected[n]?.[2] ?? '').toLowerCase());
    });
  });

  it('reports every error of a file at once', () => {
    const issues = issuesOf(`services:\n  a:\n    image: a:1@${DIGEST}\n    init: 1\n    netwrk: host\n  b:\n    image: b:1@${DIGEST}\n    depends_on: [zzz]\n`);
    expect(issues.map((i) => i.pointer)).toEqual(['/services/a/init', '/services/a/netwrk', '/services/b/depends_on/0']);
  });

  it('refuses a file over the size limit without parsing it', () => {
    const r = loadDesiredState({ files: [{ path: 'big.yaml', content: '', bytes: 10 * 1024 * 1024 }], revision: rev, env: {}, defaultStack: 't' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]?.message).toContain('limit is 1.0 MiB');
  });

  it('refuses the same service in two files, naming both', () => {
    const r = loadDesiredState({
      files: [
        { path: 'a.yaml', content: `services:\n  web:\n    image: a:1@${DIGEST}\n` },
        { path: 'b.yaml', content: `services:\n  web:\n    image: b:1@${DIGEST}\n` },
      ],
      revision: rev,
      env: {},
      defaultStack: 't',
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]).toMatchObject({ file: 'b.yaml', line: 2, message: 'service "web" is already defined in a.yaml:2' });
  });
});

describe('loadDesiredState: nothing accepted without a word (found when tried as a new user)', () => {
  it('refuses a digest that is not sha256, naming the algorithm', () => {
    const issues = issuesOf(`services:\n  web:\n    image: reg.example:5000/web:1.0.0@md5:${'0'.repeat(32)}\n`);
    expect(issues).toEqual([expect.objectContaining({ pointer: '/services/web/image', line: 3, message: expect.stringContaining('digest algorithm "md5"') })]);
  });

  it.each([
    ['a service', svc('    x-agnet:\n      health:\n        probes: [{ http: "http://127.0.0.1/" }]\n'), '/services/web/x-agnet', 4],
    ['the stack', `x-agnet:\n  prune: true\n${svc('')}`, '/x-agnet', 1],
  ])('warns about an x- key one letter away from x-agent on %s', (_where, content, pointer, line) => {
    const r = load(content);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.warnings).toEqual([expect.objectContaining({ pointer, line, severity: 'warning', message: expect.stringContaining('did you mean x-agent?') })]);
  });

  it('leaves other extension keys alone', () => {
    const r = load(svc('    x-backup-notes: nightly\n'));
    expect(r.ok && r.warnings).toEqual([]);
  });

  it('reports an unclosed quote where it opens, not at the end of the file', () => {
    const lines = ['services:', '  web:', `    image: reg.example:5000/web:1.0.0@${DIGEST}`, '    environment:', '      A: one', '      B: two', '      C: three', '      D: four', '      E: "unclosed', '      F: six', '    restart: always', '  db:', `    image: reg.example:5000/db:1.0.0@${DIGEST}`, ''];
    const issues = issuesOf(lines.join('\n'));
    expect(issues[0]).toMatchObject({ line: 9, column: 10, message: expect.stringContaining('missing closing quote') });
  });

  it('refuses files the source did not read (symbolic links), by name', () => {
    const r = loadDesiredState({ files: [], refusedFiles: [{ path: 'compose.yaml', why: 'is a symbolic link (to /etc/x)' }], revision: rev, env: {}, defaultStack: 'test', rootLabel: '/srv/desired' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => [i.file, i.message])).toEqual([['compose.yaml', 'is a symbolic link (to /etc/x)'], ['/srv/desired', 'no desired-state files (*.yaml, *.yml) found that could be read']]);
  });
});

describe('loadDesiredState: the size of all the files together', () => {
  it('refuses files that add up to more than 8 MiB, though each is under the limit of one', () => {
    const pad = (i: number) => ({ path: `s${i}.yaml`, content: `x-padding-${i}: "${'x'.repeat(900 * 1024)}"\n` });
    const r = loadDesiredState({ files: Array.from({ length: 10 }, (_, i) => pad(i)), revision: rev, env: {}, defaultStack: 'test' });
    expect(r.ok).toBe(false);
    const over = r.ok ? [] : r.issues.filter((i) => i.message.includes('add up to more than 8 MiB'));
    expect(over.map((i) => i.file)).toEqual(['s9.yaml']);
  });
});
