import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProjectFiles } from '../../agent/apply/project-files.js';
import { loadDesiredState, snapshotInput } from '../../agent/desired/load.js';
import { createLocalDirSource } from '../../agent/source/local-dir.js';

const D = `sha256:${'a'.repeat(64)}`;
const COMPOSE = `name: site
services:
  web:
    image: reg.example:5000/nginx:1.27.3@${D}
    volumes:
      - ./nginx/conf.d:/etc/nginx/conf.d:ro
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
      - ./html:/usr/share/nginx/html
`;

let dir: string;
let state: string;
const roots = () => ({ files: join(state, 'project-files'), data: join(state, 'project-data') });

async function load() {
  const source = createLocalDirSource(dir);
  const snap = await source.read();
  const r = loadDesiredState(snapshotInput(snap, { env: {}, defaultStack: 'x', policy: undefined, roots: roots() }));
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.file}:${i.line}: ${i.message}`).join('\n'));
  return { source, snap, web: r.state.services.web! };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'project-'));
  state = mkdtempSync(join(tmpdir(), 'project-state-'));
  mkdirSync(join(dir, 'nginx/conf.d'), { recursive: true });
  writeFileSync(join(dir, 'compose.yaml'), COMPOSE);
  writeFileSync(join(dir, 'nginx.conf'), 'events {}\n');
  writeFileSync(join(dir, 'nginx/conf.d/site.conf'), 'server { listen 80; }\n');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

describe('files from the repository', () => {
  it('binds a folder and a file of the repository from their copies, and a path it does not hold as a data directory', async () => {
    const { web } = await load();
    const [conf, file, html] = web.spec.volumes;
    expect(conf).toMatchObject({ type: 'bind', target: '/etc/nginx/conf.d', readOnly: true, project: { path: 'nginx/conf.d', kind: 'dir' } });
    expect(conf?.source).toBe(join(roots().files, conf!.project!.digest));
    expect(file?.source).toBe(join(roots().files, file!.project!.digest, 'nginx.conf'));
    expect(html).toMatchObject({ source: join(roots().data, 'site', 'html'), dataDir: true });
  });

  it('a changed file changes the spec hash of the service that binds it; an unrelated file does not', async () => {
    const before = (await load()).web;
    writeFileSync(join(dir, 'README.md'), 'notes\n');
    expect((await load()).web.hash).toBe(before.hash);
    writeFileSync(join(dir, 'nginx/conf.d/site.conf'), 'server { listen 8080; }\n');
    const after = (await load()).web;
    expect(after.hash).not.toBe(before.hash);
    expect(after.spec.volumes[1]?.source).toBe(before.spec.volumes[1]?.source);
  });

  it('refuses a symbolic link that leads out of the bound folder, with file and line', async () => {
    symlinkSync('/etc/passwd', join(dir, 'nginx/conf.d/passwd'));
    const snap = await createLocalDirSource(dir).read();
    const r = loadDesiredState(snapshotInput(snap, { env: {}, defaultStack: 'x', policy: undefined, roots: roots() }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => `${i.file}:${i.line}: ${i.message}`)).toEqual(['compose.yaml:6: "nginx/conf.d/passwd" is a symbolic link to /etc/passwd, outside "nginx/conf.d": the agent does not follow links out of the folder it binds']);
  });

  it('copies each once, immutable, before the container; a content changed since the load is refused', async () => {
    const { source, snap, web } = await load();
    const files = createProjectFiles(roots(), (rev) => source.project(rev));
    await files.prepare(web.spec.volumes, snap.revision);
    const [conf, file, html] = web.spec.volumes;
    expect(readFileSync(join(conf!.source, 'site.conf'), 'utf8')).toBe('server { listen 80; }\n');
    expect(readFileSync(file!.source, 'utf8')).toBe('events {}\n');
    expect(statSync(html!.source).isDirectory()).toBe(true);
    expect(readdirSync(roots().files).sort()).toEqual([conf!.project!.digest, file!.project!.digest].sort());
    await files.prepare(web.spec.volumes, snap.revision); // again: nothing to do, nothing fails

    writeFileSync(join(dir, 'nginx.conf'), 'changed {}\n');
    rmSync(join(roots().files, file!.project!.digest), { recursive: true });
    await expect(files.prepare(web.spec.volumes, snap.revision)).rejects.toMatchObject({ code: 'SOURCE_UNAVAILABLE', message: expect.stringContaining('nginx.conf') });
    expect(readdirSync(roots().files)).toEqual([conf!.project!.digest]);
  });
});

describe('env_file', () => {
  const stack = (envFile: string) => `services:
  app:
    image: reg.example:5000/app:1.0.0@${D}
    env_file: ${envFile}
    environment:
      MODE: from-environment
`;
  const loadWith = async (envFile: string, env: Record<string, string> = {}) => {
    writeFileSync(join(dir, 'compose.yaml'), stack(envFile));
    return loadDesiredState(snapshotInput(await createLocalDirSource(dir).read(), { env, defaultStack: 'x', policy: undefined, roots: roots() }));
  };

  it('sets the variables of the files in order, environment: over them, and keeps their values out of what the agent writes', async () => {
    writeFileSync(join(dir, 'app.env'), '# database\nDB_PASSWORD="s3cret-pw"\nMODE=from-file\nURL=http://${HOST:-localhost}/\n');
    writeFileSync(join(dir, 'extra.env'), 'DB_PASSWORD=override-pw\n');
    const r = await loadWith('[app.env, {path: extra.env}, {path: missing.env, required: false}]');
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.state.services.app?.spec.environment).toEqual({ DB_PASSWORD: 'override-pw', MODE: 'from-environment', URL: 'http://localhost/' });
    expect(r.secrets).toEqual(expect.arrayContaining(['s3cret-pw', 'override-pw']));
  });

  it('refuses a missing required file and one on the host, with file and line', async () => {
    const missing = await loadWith('missing.env');
    expect(missing.ok || missing.issues.map((i) => `${i.line}: ${i.message}`)).toEqual(['4: env_file "missing.env" is not in the repository (write required: false if it is optional)']);
    const host = await loadWith('/etc/app.env');
    expect(host.ok || host.issues[0]?.message).toMatch(/^not supported: env_file "\/etc\/app.env" on the host/);
  });
});

describe('secrets and configs', () => {
  const loadStack = async (yaml: string, env: Record<string, string> = {}) => {
    writeFileSync(join(dir, 'compose.yaml'), yaml);
    return loadDesiredState(snapshotInput(await createLocalDirSource(dir).read(), { env, defaultStack: 'x', policy: undefined, roots: roots() }));
  };

  it('a file is bound read-only where Compose mounts it; environment and content are written into the container, with owner and mode', async () => {
    writeFileSync(join(dir, 'pw.txt'), 'pw\n');
    const r = await loadStack(`services:
  app:
    image: reg.example:5000/app:1.0.0@${D}
    secrets: [db, {source: key, target: /etc/app/key, uid: "1000", gid: 1000, mode: 0400}]
    configs: [{source: motd, target: etc/motd}]
secrets:
  db: {file: ./pw.txt}
  key: {environment: API_KEY}
configs:
  motd: {content: hello}
`, { API_KEY: 'k-123456' });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const spec = r.state.services.app!.spec;
    expect(spec.volumes).toEqual([expect.objectContaining({ type: 'bind', target: '/run/secrets/db', readOnly: true, project: expect.objectContaining({ path: 'pw.txt', kind: 'file' }) })]);
    expect(spec.files).toEqual([
      { kind: 'secret', name: 'key', target: '/etc/app/key', content: 'k-123456', uid: 1000, gid: 1000, mode: 0o400 },
      { kind: 'config', name: 'motd', target: '/etc/motd', content: 'hello', uid: 0, gid: 0, mode: 0o444 },
    ]);
    expect(r.secrets).toContain('k-123456');
  });

  it('refuses an undeclared one, an unset variable and a Swarm external secret, each at its line', async () => {
    const r = await loadStack(`services:
  app:
    image: reg.example:5000/app:1.0.0@${D}
    secrets: [nope, key, ext]
secrets:
  key: {environment: API_KEY}
  ext: {external: true}
`);
    expect(r.ok || r.issues.map((i) => `${i.line}: ${i.message}`)).toEqual([
      '4: secret "nope" is not declared under the top-level `secrets:`',
      "4: secret \"key\" comes from the variable API_KEY, which is not set in the env file or the allowed environment (interpolation.allowEnv)",
      '7: not supported: an external secret lives in a Swarm cluster; on one host give it a file or an environment variable',
    ]);
  });
});

describe('files from the repository: the edges a review found', () => {
  const loadYaml = async (yaml: string, env: Record<string, string> = {}) => {
    writeFileSync(join(dir, 'compose.yaml'), yaml);
    return loadDesiredState(snapshotInput(await createLocalDirSource(dir).read(), { env, defaultStack: 'x', policy: undefined, roots: roots() }));
  };
  const svc = (lines: string) => `services:\n  app:\n    image: reg.example:5000/app:1.0.0@${D}\n${lines}`;

  it('two files of the same content under different names get copies of their own', async () => {
    writeFileSync(join(dir, 'a.conf'), 'same\n');
    writeFileSync(join(dir, 'b.conf'), 'same\n');
    const r = await loadYaml(svc('    volumes: ["./a.conf:/etc/a.conf:ro", "./b.conf:/etc/b.conf:ro"]\n'));
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const [a, b] = r.state.services.app!.spec.volumes;
    expect(a?.project?.digest).not.toBe(b?.project?.digest);
    const source = createLocalDirSource(dir);
    await createProjectFiles(roots(), (rev) => source.project(rev)).prepare(r.state.services.app!.spec.volumes, r.state.revision);
    expect([readFileSync(a!.source, 'utf8'), readFileSync(b!.source, 'utf8')]).toEqual(['same\n', 'same\n']);
  });

  it('a writable bind of the repository is bound read-only, with a warning saying why', async () => {
    const r = await loadYaml(svc('    volumes: ["./nginx/conf.d:/etc/nginx/conf.d"]\n'));
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.state.services.app!.spec.volumes[0]?.readOnly).toBe(true);
    expect(r.warnings.map((w) => `${w.line}: ${w.message}`)).toEqual([expect.stringMatching(/^4: "\.\/nginx\/conf\.d" is a folder of the repository: bound read-only/)]);
  });

  it('refuses a path under a symbolic link, and a relative volume device', async () => {
    symlinkSync('/etc', join(dir, 'out'));
    const r = await loadYaml(`${svc('    volumes: ["./out/ssl:/etc/ssl:ro", "data:/data"]\n')}volumes:\n  data:\n    driver_opts: {type: none, o: bind, device: ./data}\n`);
    expect(r.ok || r.issues.map((i) => `${i.line}: ${i.message}`)).toEqual([
      expect.stringMatching(/^4: "out\/ssl" is under "out", a symbolic link \(to \/etc\)/),
      expect.stringMatching(/^7: not supported: a relative device/),
    ]);
  });

  it('env_file: single-quoted values are taken as written, and an error names the key, never the value', async () => {
    writeFileSync(join(dir, 'app.env'), "LITERAL='pa$$word-${HOME}'\nBROKEN=Xq7$ecretPassw0rd\n");
    const r = await loadYaml(svc('    env_file: app.env\n'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => i.message)).toEqual(['app.env: the value of BROKEN refers to a variable that is not set, or is not a valid ${...} reference (quote it in single quotes to take it as written)']);
    writeFileSync(join(dir, 'app.env'), "LITERAL='pa$$word-${HOME}'\n");
    const ok = await loadYaml(svc('    env_file: app.env\n'));
    expect(ok.ok && ok.state.services.app!.spec.environment).toEqual({ LITERAL: 'pa$$word-${HOME}' });
  });

  it("a secret file's content is kept out of what the agent writes", async () => {
    writeFileSync(join(dir, 'db.txt'), 'file-secret-value\n');
    const r = await loadYaml(`${svc('    secrets: [db]\n')}secrets:\n  db: {file: ./db.txt}\n`);
    expect(r.ok && r.secrets).toContain('file-secret-value');
  });
});

describe('data directories and symbolic links', () => {
  it('refuses a data directory whose path goes through a link a container could have written', async () => {
    const r = roots();
    mkdirSync(join(r.data, 'app', 'data'), { recursive: true });
    // service A wrote `ln -s / /data/root` into its data directory ./data
    symlinkSync('/', join(r.data, 'app', 'data', 'root'));
    const files = createProjectFiles(r, async () => {
      throw new Error('no repository files here');
    });
    const mount = { type: 'bind' as const, source: join(r.data, 'app', 'data', 'root'), target: '/host', readOnly: false, dataDir: true };
    await expect(files.prepare([mount], 'rev')).rejects.toThrow(/goes through the symbolic link .*data\/root .*refused/);
    const fine = { ...mount, source: join(r.data, 'app', 'data', 'cache') };
    await expect(files.prepare([fine], 'rev')).resolves.toBeUndefined();
  });
});
