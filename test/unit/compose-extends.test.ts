import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import type { Raw } from '../../agent/desired/compose-merge.js';
import { resolveExtends, type ExtendsInput } from '../../agent/desired/compose-extends.js';
import { importIncluded, includeConflicts, includeEntries } from '../../agent/desired/compose-include.js';
import { fileFrom, rebaseFilePaths, rebasePath } from '../../agent/desired/compose-paths.js';
import { mergeTagsOf } from '../../agent/desired/compose-tags.js';

const svc = (services: Record<string, Raw>, rest: Raw = {}): Raw => ({ services, ...rest });

function extend(files: ExtendsInput['files'], file = 'compose.yaml', more: Partial<ExtendsInput> = {}) {
  return resolveExtends({ file, files, ...more });
}

describe('resolveExtends', () => {
  it('merges the extending service over the one it extends, in the same file (short and long form)', () => {
    const r = extend({
      'compose.yaml': svc({
        base: { image: 'busybox', environment: { TZ: 'utc', PORT: 80 }, volumes: ['common:/var/lib/backup/data:rw'] },
        cli: { extends: 'base', environment: ['PORT=8080'], volumes: ['cli:/var/lib/backup/data:ro'] },
        web: { extends: { service: 'base' }, image: 'nginx' },
      }),
    });
    expect(r.errors).toEqual([]);
    expect(r.services.cli).toEqual({ image: 'busybox', environment: { TZ: 'utc', PORT: '8080' }, volumes: ['cli:/var/lib/backup/data:ro'] });
    expect(r.services.web).toEqual({ image: 'nginx', environment: { TZ: 'utc', PORT: 80 }, volumes: ['common:/var/lib/backup/data:rw'] });
    expect(r.origin.cli).toEqual({ image: 'compose.yaml', environment: 'compose.yaml', volumes: 'compose.yaml' });
  });

  it('follows a chain, the nearest definition winning', () => {
    const r = extend({ 'compose.yaml': svc({ base: { image: 'busybox', user: 'root' }, common: { extends: 'base', image: 'alpine' }, cli: { extends: { service: 'common' } } }) });
    expect(r.services.cli).toEqual({ image: 'alpine', user: 'root' });
  });

  it('extends a service of another file, relative to the extending file, with its relative paths rebased', () => {
    const r = extend({
      'compose.yaml': svc({ web: { extends: { file: './common/../common/base.yaml', service: 'app' }, ports: ['80:80'] } }),
      'common/base.yaml': svc({
        app: { build: { dockerfile: 'Dockerfile' }, env_file: ['app.env'], volumes: ['./data:/data', 'named:/named', { type: 'bind', source: '../shared', target: '/shared' }], image: 'app' },
      }),
    });
    expect(r.errors).toEqual([]);
    expect(r.services.web).toEqual({
      build: { dockerfile: 'Dockerfile', context: './common' },
      env_file: ['./common/app.env'],
      volumes: ['./common/data:/data', 'named:/named', { type: 'bind', source: './shared', target: '/shared' }],
      image: 'app',
      ports: ['80:80'],
    });
    expect(r.origin.web).toEqual({ build: 'common/base.yaml', env_file: 'common/base.yaml', volumes: 'common/base.yaml', image: 'common/base.yaml', ports: 'compose.yaml' });
  });

  it('resolves the chain inside the other file against that file (nested file paths)', () => {
    const r = extend({
      'compose.yaml': svc({ web: { extends: { file: 'lib/a.yaml', service: 'a' } } }),
      'lib/a.yaml': svc({ a: { extends: { file: 'b.yaml', service: 'b' }, user: 'a' } }),
      'lib/b.yaml': svc({ b: { image: 'b', user: 'b', env_file: 'b.env' } }),
    });
    expect(r.errors).toEqual([]);
    expect(r.services.web).toEqual({ image: 'b', user: 'a', env_file: './lib/b.env' });
  });

  it('inherits every key, depends_on and volumes_from included (Compose since 2.33 / compose-go v2.4.8)', () => {
    const files = { 'compose.yaml': svc({ db: { image: 'pg' }, base: { image: 'a', depends_on: ['db'], volumes_from: ['db'], links: ['db'] }, web: { extends: 'base' } }) };
    expect(extend(files).services.web).toEqual({ image: 'a', depends_on: ['db'], volumes_from: ['db'], links: ['db'] });
    expect(extend(files, 'compose.yaml', { notInherited: ['depends_on', 'volumes_from'] }).services.web).toEqual({ image: 'a', links: ['db'] });
  });

  it('drops what the extending service tags !reset, replaces what it tags !override', () => {
    const doc = parseDocument('services:\n  base:\n    image: a\n    ports: ["1:1"]\n    dns: [1.1.1.1]\n  web:\n    extends: base\n    ports: !reset []\n    dns: !override [8.8.8.8]\n', { version: '1.2' });
    const r = extend({ 'compose.yaml': doc.toJS() as Raw }, 'compose.yaml', { tags: { 'compose.yaml': mergeTagsOf(doc).tags } });
    expect(r.services.web).toEqual({ image: 'a', dns: ['8.8.8.8'] });
  });

  it('a !reset value of the extended service is not inherited', () => {
    const doc = parseDocument('services:\n  base:\n    image: a\n    ports: !reset ["1:1"]\n', { version: '1.2' });
    const r = extend({ 'compose.yaml': svc({ web: { extends: { file: 'base.yaml', service: 'base' } } }), 'base.yaml': doc.toJS() as Raw }, 'compose.yaml', { tags: { 'base.yaml': mergeTagsOf(doc).tags } });
    expect(r.services.web).toEqual({ image: 'a' });
  });

  const errorCases: { what: string; files: Record<string, Raw>; file?: string; errors: { service: string; path: (string | number)[]; message: string | RegExp }[] }[] = [
    {
      what: 'a service that is not defined in the other file',
      files: { 'compose.yaml': svc({ web: { extends: { file: 'common.yaml', service: 'base' } } }), 'common.yaml': svc({ other: { image: 'x' } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends', 'service'], message: 'extends: service "base" is not defined in common.yaml' }],
    },
    {
      what: 'a service that is not defined in the same file (short form)',
      files: { 'compose.yaml': svc({ web: { extends: 'nope' } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends'], message: 'extends: service "nope" is not defined in compose.yaml' }],
    },
    {
      what: 'a file that is not part of the desired state',
      files: { 'compose.yaml': svc({ web: { extends: { file: 'gone.yaml', service: 'base' } } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends', 'file'], message: 'extends: file "gone.yaml" (gone.yaml) is not among the desired-state files' }],
    },
    {
      what: 'a path leaving the project directory',
      files: { 'compose.yaml': svc({ web: { extends: { file: '../outside.yaml', service: 'base' } } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends', 'file'], message: /leaves the desired-state directory/ }],
    },
    {
      what: 'an absolute path',
      files: { 'compose.yaml': svc({ web: { extends: { file: '/etc/compose.yaml', service: 'base' } } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends', 'file'], message: /is an absolute path/ }],
    },
    {
      what: 'a long form without service',
      files: { 'compose.yaml': svc({ web: { extends: { file: 'x.yaml' } } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends'], message: 'extends: `service` is required: the name of the service to extend' }],
    },
    {
      what: 'a service extending itself',
      files: { 'compose.yaml': svc({ web: { extends: 'web', image: 'x' } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends'], message: 'extends: circular reference: "web" (compose.yaml) extends "web" (compose.yaml)' }],
    },
    {
      what: 'a cycle across files: each service of the cycle fails, the others resolve',
      files: {
        'compose.yaml': svc({ a: { extends: { file: 'lib/b.yaml', service: 'b' } }, c: { extends: 'a' }, ok: { image: 'fine' } }),
        'lib/b.yaml': svc({ b: { extends: { file: '../compose.yaml', service: 'a' } } }),
      },
      errors: [
        { service: 'a', path: ['services', 'a', 'extends'], message: 'extends: circular reference: "a" (compose.yaml) extends "b" (lib/b.yaml) extends "a" (compose.yaml)' },
        { service: 'c', path: ['services', 'c', 'extends'], message: 'extends: circular reference: "a" (compose.yaml) extends "b" (lib/b.yaml) extends "a" (compose.yaml)' },
      ],
    },
    {
      what: 'a failure further down the chain, named where it is',
      files: { 'compose.yaml': svc({ web: { extends: { file: 'lib/mid.yaml', service: 'mid' } } }), 'lib/mid.yaml': svc({ mid: { extends: 'missing' } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'extends'], message: 'extends: "mid" in lib/mid.yaml: service "missing" is not defined in lib/mid.yaml' }],
    },
    {
      what: 'a mapping extended by a list (cannot be merged)',
      files: { 'compose.yaml': svc({ base: { image: 'a', 'x-o': { a: 1 } }, web: { extends: 'base', 'x-o': [1] } }) },
      errors: [{ service: 'web', path: ['services', 'web', 'x-o'], message: /^extends: services\.web\.x-o is a mapping in the extended service \(compose\.yaml\) and a list in "web"/ }],
    },
  ];

  it.each(errorCases)('returns an error for $what, never throws', ({ files, file, errors }) => {
    const r = extend(files, file);
    expect(r.errors).toEqual(errors.map((e) => ({ ...e, message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message) })));
    for (const e of errors) expect(r.services).not.toHaveProperty(e.service);
  });

  it('still resolves the services unrelated to a cycle', () => {
    const r = extend(errorCases[7]!.files);
    expect(r.services.ok).toEqual({ image: 'fine' });
  });
});

describe('include', () => {
  it.each([
    ['a list of paths, normalised', ['lib/db.yaml', './lib/../other.yml'], 'compose.yaml', [{ paths: ['lib/db.yaml'], index: 0 }, { paths: ['other.yml'], index: 1 }]],
    ['the long form with several files (merged in order)', [{ path: ['a/compose.yaml', 'a/override.yaml'] }], 'compose.yaml', [{ paths: ['a/compose.yaml', 'a/override.yaml'], index: 0 }]],
    ['paths relative to the including file', [{ path: '../shared/db.yaml' }], 'apps/compose.yaml', [{ paths: ['shared/db.yaml'], index: 0 }]],
    ['project_directory when it is the default', [{ path: 'lib/db.yaml', project_directory: './lib/' }], 'compose.yaml', [{ paths: ['lib/db.yaml'], index: 0 }]],
  ])('reads %s', (_what, include, from, entries) => {
    const r = includeEntries(include, from);
    expect(r.errors).toEqual([]);
    expect(r.entries).toEqual(entries);
    expect(r.files).toEqual(entries.flatMap((e) => e.paths));
  });

  it.each([
    ['a path leaving the project', ['../elsewhere/compose.yaml'], ['include', 0], /leaves the desired-state directory/],
    ['a remote file', ['oci://registry/app:1'], ['include', 0], /not supported: "oci:\/\/registry\/app:1" is a remote Compose file/],
    ['env_file', [{ path: 'lib/db.yaml', env_file: 'lib/.env' }], ['include', 0, 'env_file'], /^include: not supported: env_file/],
    ['another project_directory', [{ path: 'lib/db.yaml', project_directory: '.' }], ['include', 0, 'project_directory'], /^include: not supported: project_directory other than the included file's own directory \(lib\)/],
    ['an entry without path', [{ env_file: 'x' }], ['include', 0, 'path'], /`path` is required/],
    ['a value that is not a list', 'lib/db.yaml', ['include'], /write a list/],
    ['a file including itself', ['compose.yaml'], ['include', 0], /^include: include cycle: compose.yaml includes compose.yaml$/],
  ])('refuses %s, with why', (_what, include, path, message) => {
    const r = includeEntries(include, 'compose.yaml');
    expect(r.errors).toContainEqual({ file: 'compose.yaml', path, message: expect.stringMatching(message) });
  });

  it('detects a cycle through the files that included this one', () => {
    const r = includeEntries(['../compose.yaml'], 'lib/db.yaml', ['compose.yaml']);
    expect(r.errors).toEqual([{ file: 'lib/db.yaml', path: ['include', 0], message: 'include: include cycle: compose.yaml includes lib/db.yaml includes compose.yaml' }]);
    expect(r.entries).toEqual([]);
  });

  const including = { path: 'compose.yaml', value: { include: ['lib/db.yaml'], services: { web: { image: 'web' }, db: { image: 'mine' } }, networks: { shared: { driver: 'bridge' } } } };

  it('refuses an included file that redefines a service, naming both files', () => {
    const errors = includeConflicts(including, [{ index: 0, path: 'lib/db.yaml', value: { services: { db: { image: 'postgres' } } } }]);
    expect(errors).toEqual([
      {
        file: 'compose.yaml',
        path: ['include', 0],
        message: 'include: service "db" of lib/db.yaml is already defined in compose.yaml: Compose refuses an include that redefines it; rename one of them, or change the included one from an override file (compose.override.yaml)',
      },
    ]);
  });

  it('refuses two includes defining one volume differently, accepts an identical network', () => {
    const errors = includeConflicts(including, [
      { index: 0, path: 'a.yaml', value: { volumes: { data: { driver: 'local' } }, networks: { shared: { driver: 'bridge' } } } },
      { index: 1, path: 'b.yaml', value: { volumes: { data: { driver: 'nfs' } } } },
    ]);
    expect(errors).toEqual([{ file: 'compose.yaml', path: ['include', 1], message: expect.stringContaining('volume "data" of b.yaml is already defined in a.yaml (included before)') }]);
  });

  it('imports the resources of the included models, include removed', () => {
    const r = importIncluded(including.value, [{ index: 0, path: 'lib/db.yaml', value: { services: { cache: { image: 'redis' } }, volumes: { pg: null } } }]);
    expect(r.value).toEqual({ services: { web: { image: 'web' }, db: { image: 'mine' }, cache: { image: 'redis' } }, networks: { shared: { driver: 'bridge' } }, volumes: { pg: null } });
    expect(r.origin.services).toEqual({ cache: 'lib/db.yaml' });
    expect(r.origin.volumes).toEqual({ pg: 'lib/db.yaml' });
  });
});

describe('project paths', () => {
  it.each([
    ['./data', 'common', '.', './common/data'],
    ['../shared', 'common', '.', './shared'],
    ['data', 'lib/a', 'lib/b', '../a/data'],
    ['.', 'common', '.', './common'],
    ['/abs/path', 'common', '.', '/abs/path'],
    ['./same', 'x', 'x', './same'],
  ])('rebasePath(%s) from %s to %s is %s', (p, from, to, expected) => {
    expect(rebasePath(p, from, to)).toBe(expected);
  });

  it('fileFrom resolves against the directory of the file that names it', () => {
    expect(fileFrom('apps/web/compose.yaml', '../common.yaml')).toEqual({ path: 'apps/common.yaml' });
    expect(fileFrom('compose.yaml', '~/c.yaml')).toEqual({ error: expect.stringContaining('home directory') });
  });

  it('rebases an included file: services, secret and config files, bind devices of local volumes', () => {
    const value = {
      services: { db: { image: 'pg', volumes: ['./init:/docker-entrypoint-initdb.d:ro'] } },
      secrets: { pw: { file: './pw.txt' } },
      configs: { c: { file: 'c.conf' }, ext: { external: true } },
      volumes: { bound: { driver_opts: { type: 'none', o: 'bind', device: './data' } }, nfs: { driver_opts: { type: 'nfs', o: 'addr=1.2.3.4', device: ':/x' } } },
    };
    expect(rebaseFilePaths(value, 'lib', '.')).toEqual({
      services: { db: { image: 'pg', volumes: ['./lib/init:/docker-entrypoint-initdb.d:ro'] } },
      secrets: { pw: { file: './lib/pw.txt' } },
      configs: { c: { file: './lib/c.conf' }, ext: { external: true } },
      volumes: { bound: { driver_opts: { type: 'none', o: 'bind', device: './lib/data' } }, nfs: { driver_opts: { type: 'nfs', o: 'addr=1.2.3.4', device: ':/x' } } },
    });
  });
});
