import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDesiredState, snapshotInput } from '../../agent/desired/load.js';
import { createLocalDirSource } from '../../agent/source/local-dir.js';

const D = `sha256:${'a'.repeat(64)}`;
const img = (n: string, tag = '1.0.0') => `reg.example:5000/${n}:${tag}@${D}`;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'compose-project-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(files: Record<string, string>): void {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
}

async function load(opts: { composeFiles?: string[] } = {}) {
  const snap = await createLocalDirSource(dir).read();
  return loadDesiredState({ ...snapshotInput(snap, { env: { TAG: '2.0.0' }, defaultStack: 'x', policy: undefined, roots: { files: '/srv/f', data: '/srv/d' } }), ...opts });
}

describe('a Compose project of several files', () => {
  it('compose.override.yaml is merged over compose.yaml by Compose rules', async () => {
    write({
      'compose.yaml': `name: site\nservices:\n  web:\n    image: ${img('web')}\n    environment: [A=1, B=2]\n    ports: ["127.0.0.1:8080:80"]\n    labels: {team: web}\n`,
      'compose.override.yaml': `services:\n  web:\n    image: ${img('web', '${TAG}')}\n    environment: {B: three}\n    ports: ["127.0.0.1:8443:443"]\n`,
    });
    const r = await load();
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const web = r.state.services.web!;
    expect(web.spec.image).toBe(img('web', '2.0.0'));
    expect(web.spec.environment).toEqual({ A: '1', B: 'three' });
    expect(web.spec.ports.map((p) => p.hostPort)).toEqual([8080, 8443]);
    expect(web.spec.labels).toEqual({ team: 'web' });
    expect(r.state.files).toEqual(['compose.yaml']);
  });

  it('an error is reported in the file and at the line that wrote it', async () => {
    write({
      'compose.yaml': `services:\n  web:\n    image: ${img('web')}\n`,
      'compose.override.yaml': `services:\n  web:\n    restart: sometimes\n`,
    });
    const r = await load();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => `${i.file}:${i.line}`)).toEqual(['compose.override.yaml:3']);
  });

  it('an ordered list of files, like -f; another YAML file of the directory is refused, not dropped', async () => {
    write({
      'compose.yaml': `services:\n  web:\n    image: ${img('web')}\n`,
      'compose.prod.yaml': `services:\n  web:\n    restart: always\n`,
      'notes.yaml': 'services: {}\n',
    });
    const refused = await load({ composeFiles: ['compose.yaml', 'compose.prod.yaml'] });
    expect(refused.ok || refused.issues.map((w) => `${w.file}: ${w.message}`)).toEqual([expect.stringMatching(/^notes.yaml: not part of the Compose project \(compose.yaml \+ compose.prod.yaml\)/)]);
    rmSync(join(dir, 'notes.yaml'));
    const r = await load({ composeFiles: ['compose.yaml', 'compose.prod.yaml'] });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.state.services.web?.spec.restart).toBe('always');
  });

  it('extends from another file, include, YAML merge keys and !reset', async () => {
    write({
      'compose.yaml': `include: [db/compose.yaml]
x-common: &common
  restart: unless-stopped
  labels: {stack: site}
services:
  web:
    <<: *common
    extends: {file: common/base.yaml, service: base}
    image: ${img('web')}
    dns: !reset []
`,
      'common/base.yaml': `services:\n  base:\n    image: ${img('base')}\n    environment: {LOG: info}\n    dns: [169.254.1.53]\n    volumes: ["./conf:/etc/app:ro"]\n`,
      'common/conf/app.ini': 'x=1\n',
      'db/compose.yaml': `services:\n  db:\n    image: ${img('postgres')}\n    volumes: ["./init:/docker-entrypoint-initdb.d:ro"]\n`,
      'db/init/1.sql': 'create table t (id int);\n',
    });
    const r = await load();
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const web = r.state.services.web!.spec;
    expect(web).toMatchObject({ image: img('web'), restart: 'unless-stopped', labels: { stack: 'site' }, environment: { LOG: 'info' } });
    expect(web.dns).toBeUndefined();
    // Relative paths of another file are relative to that file's folder.
    expect(web.volumes[0]?.project?.path).toBe('common/conf');
    expect(r.state.services.db?.spec.volumes[0]?.project?.path).toBe('db/init');
  });

  it('refuses an extends cycle and an include that leaves the directory, at their lines', async () => {
    write({ 'compose.yaml': `include: [../outside.yaml]\nservices:\n  a:\n    image: ${img('a')}\n` });
    const inc = await load();
    expect(inc.ok || inc.issues.map((i) => `${i.line}: ${i.message}`)).toEqual([expect.stringMatching(/^1: include: .*leaves the desired-state directory/)]);
    write({ 'compose.yaml': `services:\n  a:\n    image: ${img('a')}\n    extends: b\n  b:\n    image: ${img('b')}\n    extends: a\n` });
    const cyc = await load();
    expect(cyc.ok).toBe(false);
    if (!cyc.ok) expect(cyc.issues.map((i) => i.message).join('\n')).toMatch(/circular/);
  });
});
