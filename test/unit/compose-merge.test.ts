import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { mergeComposeFiles, mergeServiceDefinitions, originOf, type MergeConflict, type Raw } from '../../agent/desired/compose-merge.js';
import { mergeTagsOf } from '../../agent/desired/compose-tags.js';

/** A file's value and its tags, parsed as the loader parses (yaml 1.2, strict, no custom tags). */
function yaml(text: string): { value: Raw; tags: ReturnType<typeof mergeTagsOf>['tags']; refused: ReturnType<typeof mergeTagsOf>['refused'] } {
  const doc = parseDocument(text, { uniqueKeys: true, strict: true, version: '1.2' });
  expect(doc.errors).toEqual([]);
  return { value: doc.toJS() as Raw, ...mergeTagsOf(doc) };
}

describe('mergeServiceDefinitions: one rule per key', () => {
  const cases: { rule: string; base: Raw; override: Raw; expected: Raw }[] = [
    { rule: 'a scalar is replaced', base: { image: 'a:1', restart: 'always' }, override: { image: 'a:2' }, expected: { image: 'a:2', restart: 'always' } },
    { rule: 'a key only the base has is kept, one only the override has is added', base: { image: 'a' }, override: { user: '1000' }, expected: { image: 'a', user: '1000' } },
    {
      rule: 'environment: mapping over mapping, by key',
      base: { environment: { A: '1', B: '2' } },
      override: { environment: { B: '3', C: '4' } },
      expected: { environment: { A: '1', B: '3', C: '4' } },
    },
    {
      rule: 'environment: a list over a mapping merges by key, into a mapping',
      base: { environment: { A: '1', B: '2' } },
      override: { environment: ['B=3', 'C='] },
      expected: { environment: { A: '1', B: '3', C: '' } },
    },
    {
      rule: 'environment: a mapping over a list; a name without value (null) replaces the value',
      base: { environment: ['A=1', 'B=2', 'D', 'E'] },
      override: { environment: { A: null, D: 5 } },
      expected: { environment: { A: null, B: '2', D: 5, E: null } },
    },
    {
      rule: 'labels: list over list, by key, the value after the first = kept whole',
      base: { labels: ['a=1', 'b=x=y'] },
      override: { labels: ['a=2'] },
      expected: { labels: { a: '2', b: 'x=y' } },
    },
    { rule: 'sysctls: list over mapping', base: { sysctls: { 'net.core.somaxconn': 1024 } }, override: { sysctls: ['net.core.somaxconn=2048', 'net.ipv4.tcp_syncookies=0'] }, expected: { sysctls: { 'net.core.somaxconn': '2048', 'net.ipv4.tcp_syncookies': '0' } } },
    {
      rule: 'extra_hosts: by host, the override replacing that host (list forms host=ip, host:ip, IPv6)',
      base: { extra_hosts: ['db=10.0.0.1', 'cache:10.0.0.2', 'v6:::1'] },
      override: { extra_hosts: { db: '10.0.0.9' } },
      expected: { extra_hosts: { db: '10.0.0.9', cache: '10.0.0.2', v6: '::1' } },
    },
    { rule: 'extra_hosts: a host listed twice keeps both addresses', base: { extra_hosts: { a: '1.1.1.1' } }, override: { extra_hosts: ['b=2.2.2.2', 'b=3.3.3.3'] }, expected: { extra_hosts: { a: '1.1.1.1', b: ['2.2.2.2', '3.3.3.3'] } } },
    {
      rule: 'ports: appended; the same host ip/published/target/protocol is one entry, in either syntax',
      base: { ports: ['8080:80', '127.0.0.1:9000:9000', '53:53/udp'] },
      override: { ports: [{ target: 80, published: 8080, name: 'web' }, '53:53', '[::1]:9000:9000'] },
      expected: { ports: [{ target: 80, published: 8080, name: 'web' }, '127.0.0.1:9000:9000', '53:53/udp', '53:53', '[::1]:9000:9000'] },
    },
    { rule: 'ports: a duplicate within one side is dropped too', base: { ports: ['80', 80] }, override: { ports: ['443'] }, expected: { ports: [80, '443'] } },
    { rule: 'expose: appended, a value once (number or string)', base: { expose: ['80', 443] }, override: { expose: [80, '8080'] }, expected: { expose: [80, 443, '8080'] } },
    {
      rule: 'volumes: by container path, the override wins for the same target (short and long syntax)',
      base: { volumes: ['data:/var/lib/data', './conf:/etc/app/', { type: 'volume', source: 'logs', target: '/logs' }] },
      override: { volumes: ['other:/var/lib/data:ro', { type: 'bind', source: './conf2', target: '/etc/app' }, 'cache:/cache'] },
      expected: { volumes: ['other:/var/lib/data:ro', { type: 'bind', source: './conf2', target: '/etc/app' }, { type: 'volume', source: 'logs', target: '/logs' }, 'cache:/cache'] },
    },
    {
      rule: 'secrets: by where they are mounted (/run/secrets/<source> by default)',
      base: { secrets: ['db', 'api'] },
      override: { secrets: [{ source: 'db', target: '/run/secrets/db', mode: 0o400 }, { source: 'api', target: 'api_key' }] },
      expected: { secrets: [{ source: 'db', target: '/run/secrets/db', mode: 0o400 }, 'api', { source: 'api', target: 'api_key' }] },
    },
    { rule: 'configs: by target (/<source> by default)', base: { configs: ['nginx'] }, override: { configs: [{ source: 'nginx2', target: '/nginx' }] }, expected: { configs: [{ source: 'nginx2', target: '/nginx' }] } },
    {
      rule: 'networks: a list and a mapping merged by network name; aliases appended once',
      base: { networks: { front: { aliases: ['web'] }, back: null } },
      override: { networks: ['front', 'extra'] },
      expected: { networks: { front: { aliases: ['web'] }, back: null, extra: null } },
    },
    {
      rule: 'networks: options of the same network merged',
      base: { networks: { front: { aliases: ['a', 'b'], priority: 1 } } },
      override: { networks: { front: { aliases: ['b', 'c'], priority: 5 } } },
      expected: { networks: { front: { aliases: ['a', 'b', 'c'], priority: 5 } } },
    },
    {
      rule: 'depends_on: by service; a listed name means service_started (compose-go)',
      base: { depends_on: { db: { condition: 'service_healthy' } } },
      override: { depends_on: ['cache'] },
      expected: { depends_on: { db: { condition: 'service_healthy' }, cache: { condition: 'service_started', required: true } } },
    },
    { rule: 'depends_on: the override condition of the same service wins', base: { depends_on: ['db'] }, override: { depends_on: { db: { condition: 'service_healthy' } } }, expected: { depends_on: { db: { condition: 'service_healthy', required: true } } } },
    { rule: 'command: replaced, not appended', base: { command: ['echo', 'foo'] }, override: { command: ['echo', 'bar'] }, expected: { command: ['echo', 'bar'] } },
    { rule: 'entrypoint: replaced, a string over a list', base: { entrypoint: ['/a', 'b'] }, override: { entrypoint: '/c' }, expected: { entrypoint: '/c' } },
    { rule: 'command: null replaces too', base: { command: 'x' }, override: { command: null }, expected: { command: null } },
    {
      rule: 'healthcheck: merged as a mapping, but its test replaced',
      base: { healthcheck: { test: ['CMD', 'a'], interval: '10s' } },
      override: { healthcheck: { test: ['CMD', 'b'], retries: 3 } },
      expected: { healthcheck: { test: ['CMD', 'b'], interval: '10s', retries: 3 } },
    },
    { rule: 'profiles: appended once (compose-go dedupes; not replaced)', base: { profiles: ['a', 'b'] }, override: { profiles: ['b', 'c'] }, expected: { profiles: ['a', 'b', 'c'] } },
    { rule: 'image: replaced', base: { image: 'a', build: '.' }, override: { image: 'b' }, expected: { image: 'b', build: '.' } },
    {
      rule: 'build: a string is the context, merged with a mapping; args by key',
      base: { build: { context: './app', args: ['A=1'] } },
      override: { build: { args: { B: '2' }, target: 'prod' } },
      expected: { build: { context: './app', args: { A: '1', B: '2' }, target: 'prod' } },
    },
    { rule: 'build: a string over a mapping sets its context', base: { build: { context: '.', dockerfile: 'D' } }, override: { build: './x' }, expected: { build: { context: './x', dockerfile: 'D' } } },
    { rule: 'dns: a string and a list appended once', base: { dns: '1.1.1.1' }, override: { dns: ['8.8.8.8', '1.1.1.1'] }, expected: { dns: ['1.1.1.1', '8.8.8.8'] } },
    { rule: 'dns_search: appended once', base: { dns_search: ['a.example'] }, override: { dns_search: 'b.example' }, expected: { dns_search: ['a.example', 'b.example'] } },
    { rule: 'tmpfs: by mount path, the override options win', base: { tmpfs: ['/run:size=1m', '/tmp'] }, override: { tmpfs: '/run:size=64m' }, expected: { tmpfs: ['/run:size=64m', '/tmp'] } },
    { rule: 'cap_add / cap_drop: appended once', base: { cap_add: ['NET_ADMIN'], cap_drop: ['ALL'] }, override: { cap_add: ['SYS_TIME', 'NET_ADMIN'], cap_drop: ['ALL'] }, expected: { cap_add: ['NET_ADMIN', 'SYS_TIME'], cap_drop: ['ALL'] } },
    { rule: 'security_opt: appended once', base: { security_opt: ['label:role:ROLE'] }, override: { security_opt: ['label:user:USER', 'label:role:ROLE'] }, expected: { security_opt: ['label:role:ROLE', 'label:user:USER'] } },
    { rule: 'devices: by container path', base: { devices: ['/dev/sda:/dev/xvda:rwm', '/dev/ttyUSB0'] }, override: { devices: ['/dev/sdb:/dev/xvda'] }, expected: { devices: ['/dev/sdb:/dev/xvda', '/dev/ttyUSB0'] } },
    { rule: 'env_file: by path, the long form over the short', base: { env_file: './a.env' }, override: { env_file: [{ path: 'a.env', required: false }, 'b.env'] }, expected: { env_file: [{ path: 'a.env', required: false }, 'b.env'] } },
    {
      rule: 'ulimits: by name, an entry replaced whole (compose-go)',
      base: { ulimits: { nofile: { soft: 20000, hard: 40000 }, nproc: 65535 } },
      override: { ulimits: { nofile: { soft: 10000 } } },
      expected: { ulimits: { nofile: { soft: 10000 }, nproc: 65535 } },
    },
    {
      rule: 'logging: the same driver merges options',
      base: { logging: { driver: 'json-file', options: { 'max-size': '10m' } } },
      override: { logging: { driver: 'json-file', options: { 'max-file': '3' } } },
      expected: { logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } } },
    },
    {
      rule: 'logging: another driver replaces the whole block',
      base: { logging: { driver: 'json-file', options: { 'max-size': '10m' } } },
      override: { logging: { driver: 'syslog', options: { 'syslog-address': 'udp://h:514' } } },
      expected: { logging: { driver: 'syslog', options: { 'syslog-address': 'udp://h:514' } } },
    },
    {
      rule: 'deploy: merged recursively, deploy.labels by key',
      base: { deploy: { resources: { limits: { cpus: '1', memory: '1g' } }, labels: ['a=1'] } },
      override: { deploy: { resources: { limits: { memory: '2g' } }, labels: { b: '2' } } },
      expected: { deploy: { resources: { limits: { cpus: '1', memory: '2g' } }, labels: { a: '1', b: '2' } } },
    },
    {
      rule: 'x-* extensions: mappings merged recursively, lists appended',
      base: { 'x-agent': { backup: { paths: ['/a'] }, keep: 1 } },
      override: { 'x-agent': { backup: { paths: ['/b'] } } },
      expected: { 'x-agent': { backup: { paths: ['/a', '/b'] }, keep: 1 } },
    },
    { rule: 'a null value keeps the earlier one (compose-go; !reset removes)', base: { image: 'a', environment: { A: '1' } }, override: { image: null, environment: null }, expected: { image: 'a', environment: { A: '1' } } },
  ];

  it.each(cases)('$rule', ({ base, override, expected }) => {
    expect(mergeServiceDefinitions(base, override)).toEqual(expected);
  });

  it('keeps the key order of the base, new keys after', () => {
    expect(Object.keys(mergeServiceDefinitions({ image: 'a', user: 'u' }, { ports: ['1'], image: 'b' }))).toEqual(['image', 'user', 'ports']);
  });

  it('mutates neither input and shares no node with them', () => {
    const base = { environment: { A: '1' }, volumes: ['a:/a'], deploy: { resources: { limits: { cpus: '1' } } } };
    const override = { environment: ['B=2'], volumes: ['b:/b'], 'x-new': { list: [1] } };
    const before = JSON.stringify([base, override]);
    const merged = mergeServiceDefinitions(base, override);
    expect(JSON.stringify([base, override])).toBe(before);
    (merged.deploy as { resources: { limits: { cpus: string } } }).resources.limits.cpus = 'changed';
    (merged['x-new'] as { list: number[] }).list.push(2);
    expect(base.deploy.resources.limits.cpus).toBe('1');
    expect(override['x-new'].list).toEqual([1]);
  });

  it('reports a mapping overridden by a list (Compose refuses it), the later value kept', () => {
    const conflicts: MergeConflict[] = [];
    const merged = mergeServiceDefinitions({ 'x-opts': { a: 1 } }, { 'x-opts': ['a'] }, { service: 'web', conflicts });
    expect(merged['x-opts']).toEqual(['a']);
    expect(conflicts).toEqual([{ path: ['services', 'web', 'x-opts'], message: expect.stringMatching(/^services\.web\.x-opts is a mapping in the base definition and a list in the overriding definition/) }]);
  });

  it('a scalar overridden by a mapping is no conflict (compose-go replaces it)', () => {
    const conflicts: MergeConflict[] = [];
    expect(mergeServiceDefinitions({ 'x-a': 'text' }, { 'x-a': { b: 1 } }, { conflicts })).toEqual({ 'x-a': { b: 1 } });
    expect(conflicts).toEqual([]);
  });
});

describe('!reset and !override', () => {
  it('are found on their nodes without parser options', () => {
    const f = yaml(`services:
  app:
    ports: !reset []
    environment:
      FOO: !reset null
    command: !override ["a"]
`);
    expect(f.tags).toEqual([
      { path: ['services', 'app', 'ports'], tag: 'reset' },
      { path: ['services', 'app', 'environment', 'FOO'], tag: 'reset' },
      { path: ['services', 'app', 'command'], tag: 'override' },
    ]);
    // Without the tags, yaml reads `!reset null` as the string "null": why the tags are needed.
    expect((f.value.services as { app: { environment: Raw } }).app.environment.FOO).toBe('null');
  });

  it('an alias to a tagged node carries the tag', () => {
    const f = yaml(`x-ports: &p !override ["1:1"]
services:
  app:
    ports: *p
`);
    expect(f.tags).toContainEqual({ path: ['services', 'app', 'ports'], tag: 'override' });
  });

  it.each([
    ['a tag on a list item', 'services:\n  a:\n    ports:\n      - !reset "80:80"\n', /not supported: !reset on a list item/, ['services', 'a', 'ports', 0]],
    ['an unknown tag', 'services:\n  a:\n    image: !secret foo\n', /unknown YAML tag !secret/, ['services', 'a', 'image']],
    ['a tag on the whole document', '!override\nservices: {}\n', /on the whole document/, []],
  ])('refuses %s, with why', (_what, text, message, path) => {
    const f = yaml(text);
    expect(f.tags).toEqual([]);
    expect(f.refused).toEqual([{ path, message: expect.stringMatching(message) }]);
  });

  const base = yaml(`services:
  app:
    image: myapp
    ports: ["8080:80"]
    environment: [FOO=BAR, KEEP=1]
    networks: [front, back]
`);

  it('!reset removes what the earlier file set, even inside a list-form value', () => {
    const over = yaml(`services:
  app:
    ports: !reset []
    environment:
      FOO: !reset null
    networks:
      back: !reset
`);
    const { value } = mergeComposeFiles([{ path: 'compose.yaml', ...base }, { path: 'compose.override.yaml', ...over }]);
    expect((value.services as Raw).app).toEqual({ image: 'myapp', environment: { KEEP: '1' }, networks: { front: null } });
  });

  it('!override replaces instead of merging', () => {
    const over = yaml(`services:
  app:
    ports: !override ["8443:443"]
    environment: !override {ONLY: "1"}
`);
    const { value } = mergeComposeFiles([{ path: 'compose.yaml', ...base }, { path: 'compose.override.yaml', ...over }]);
    const app = (value.services as Record<string, Raw>).app;
    expect(app?.ports).toEqual(['8443:443']);
    expect(app?.environment).toEqual({ ONLY: '1' });
  });

  it('mergeServiceDefinitions takes the tags of the overriding file', () => {
    const over = yaml('services:\n  web:\n    dns: !reset []\n    volumes: !override ["b:/b"]\n');
    const merged = mergeServiceDefinitions({ dns: ['1.1.1.1'], volumes: ['a:/a'] }, (over.value.services as Record<string, Raw>).web ?? {}, { service: 'web', tags: over.tags });
    expect(merged).toEqual({ volumes: ['b:/b'] });
  });
});

describe('mergeComposeFiles', () => {
  const main = {
    path: 'compose.yaml',
    value: {
      name: 'site',
      services: { web: { image: 'nginx:1', ports: ['80:80'], environment: { A: '1' } }, db: { image: 'postgres' } },
      volumes: { data: { driver: 'local' }, logs: null },
      networks: { front: { labels: ['a=1'] } },
      'x-common': { a: 1 },
    },
  };
  const override = {
    path: 'compose.override.yaml',
    value: {
      name: 'site-dev',
      services: { web: { image: 'nginx:2', environment: ['B=2'] }, debug: { image: 'busybox' } },
      volumes: { data: null, cache: {} },
      networks: { front: { labels: { b: '2' } } },
      'x-common': { b: 2 },
    },
  };
  const merged = mergeComposeFiles([main, override]);

  it('merges services per service, resources per name, x-* recursively; the last name wins', () => {
    expect(merged.value).toEqual({
      name: 'site-dev',
      services: {
        web: { image: 'nginx:2', ports: ['80:80'], environment: { A: '1', B: '2' } },
        db: { image: 'postgres' },
        debug: { image: 'busybox' },
      },
      volumes: { data: { driver: 'local' }, logs: null, cache: {} },
      networks: { front: { labels: { a: '1', b: '2' } } },
      'x-common': { a: 1, b: 2 },
    });
    expect(merged.conflicts).toEqual([]);
  });

  it('says which file set each key of each service, and each resource', () => {
    expect(merged.origin.services.web).toEqual({ image: 'compose.override.yaml', ports: 'compose.yaml', environment: 'compose.override.yaml' });
    expect(merged.origin.serviceFile).toEqual({ web: 'compose.yaml', db: 'compose.yaml', debug: 'compose.override.yaml' });
    expect(merged.origin.resources.volumes).toEqual({ data: 'compose.override.yaml', logs: 'compose.yaml', cache: 'compose.override.yaml' });
    expect(merged.origin.top.name).toBe('compose.override.yaml');
    expect(originOf(merged.origin, ['services', 'web', 'ports', 0])).toBe('compose.yaml');
    expect(originOf(merged.origin, ['services', 'db'])).toBe('compose.yaml');
    expect(originOf(merged.origin, ['services', 'debug', 'image'])).toBe('compose.override.yaml');
    expect(originOf(merged.origin, ['networks', 'front', 'labels'])).toBe('compose.override.yaml');
  });

  it('applies files in order: a third file wins over both', () => {
    const third = { path: 'prod.yaml', value: { services: { web: { image: 'nginx:3', ports: ['443:443'] } } } };
    const r = mergeComposeFiles([main, override, third]);
    expect((r.value.services as Record<string, Raw>).web).toMatchObject({ image: 'nginx:3', ports: ['80:80', '443:443'] });
    expect(r.origin.services.web?.ports).toBe('prod.yaml');
  });

  it('drops the origin of what a later !reset removed', () => {
    const reset = yaml('services:\n  web:\n    ports: !reset []\n');
    const r = mergeComposeFiles([main, { path: 'reset.yaml', ...reset }]);
    expect((r.value.services as Record<string, Raw>).web).not.toHaveProperty('ports');
    expect(r.origin.services.web).not.toHaveProperty('ports');
  });

  it('a service replaced whole with !override is defined by the file that replaced it', () => {
    const over = yaml('services:\n  web: !override\n    image: other\n');
    const r = mergeComposeFiles([main, { path: 'replace.yaml', ...over }]);
    expect((r.value.services as Record<string, Raw>).web).toEqual({ image: 'other' });
    expect(r.origin.serviceFile.web).toBe('replace.yaml');
    expect(r.origin.services.web).toEqual({ image: 'replace.yaml' });
  });

  it('merges IPAM pools of a network by subnet, labels by key', () => {
    const r = mergeComposeFiles([
      { path: 'a.yaml', value: { networks: { n: { ipam: { config: [{ subnet: '10.1.0.0/16', gateway: '10.1.0.1' }] }, labels: { a: '1' } } } } },
      { path: 'b.yaml', value: { networks: { n: { ipam: { config: [{ subnet: '10.1.0.0/16', ip_range: '10.1.5.0/24' }, { subnet: '10.2.0.0/16' }] }, labels: ['b=2'] } } } },
    ]);
    expect(r.value.networks).toEqual({
      n: { ipam: { config: [{ subnet: '10.1.0.0/16', gateway: '10.1.0.1', ip_range: '10.1.5.0/24' }, { subnet: '10.2.0.0/16' }] }, labels: { a: '1', b: '2' } },
    });
  });

  it('reports a conflict with the file of each side', () => {
    const r = mergeComposeFiles([main, { path: 'bad.yaml', value: { 'x-common': ['list'] } }]);
    expect(r.conflicts).toEqual([{ file: 'bad.yaml', path: ['x-common'], message: expect.stringContaining('is a mapping in compose.yaml and a list in bad.yaml') }]);
  });

  it('uses the origins resolveExtends gives for inherited keys', () => {
    const r = mergeComposeFiles([{ path: 'compose.yaml', value: { services: { web: { image: 'a', user: 'u' } } }, serviceOrigin: { web: { image: 'common.yaml' } } }]);
    expect(r.origin.services.web).toEqual({ image: 'common.yaml', user: 'compose.yaml' });
  });
});
