import { describe, expect, it } from 'vitest';
import { restoreServiceBlock, serviceBlock } from '../../agent/revert/edit.js';
import { addQuarantineRule, findQuarantine, imageName, parseQuarantineRules, QUARANTINE_MARK } from '../../agent/renovate/quarantine.js';

const GOOD = `# Reference host
name: ref
services:
  # The database: reviewed by a person.
  db:
    image: postgres:15.8@sha256:${'a'.repeat(64)}  # pinned
    x-agent: {policy: manual}
  web:
    image: nginx:1.27.3@sha256:${'b'.repeat(64)}
`;
const TIP = `# Reference host
name: ref
services:
  # The database: reviewed by a person.
  db:
    image: postgres:16.1@sha256:${'c'.repeat(64)}  # bumped by Renovate
    x-agent: {policy: manual}
  web:
    image: nginx:1.27.4@sha256:${'d'.repeat(64)}   # a later, unrelated change
    restart: always
`;

describe('restoreServiceBlock', () => {
  it('puts one service back as it was and leaves the rest of the file, comments included, as it is', () => {
    const out = restoreServiceBlock(TIP, GOOD, 'db');
    expect(serviceBlock(out, 'db')).toEqual(serviceBlock(GOOD, 'db'));
    expect(serviceBlock(out, 'web')).toEqual(serviceBlock(TIP, 'web'));
    expect(out).toContain('# Reference host');
    expect(out).toContain('# The database: reviewed by a person.');
    expect(out).toContain('# a later, unrelated change');
    expect(out).toContain('postgres:15.8@');
    expect(out).not.toContain('postgres:16.1');
  });

  it('refuses when the good version has no such service', () => {
    expect(() => restoreServiceBlock(TIP, GOOD, 'cache')).toThrow(/not in the good version/);
  });
});

describe('quarantine rules in renovate.json', () => {
  const base = `${JSON.stringify({ extends: ['config:recommended'], packageRules: [{ matchPackageNames: ['x'], automerge: true }] }, null, 2)}\n`;

  it('adds exactly one rule per image and version, keeps the others, and reads it back', () => {
    const once = addQuarantineRule(base, 'docker.io/library/nginx:1.23.0@sha256:' + 'e'.repeat(64), '1.23.0', 'web 1.23.0 failed');
    const twice = addQuarantineRule(once, 'docker.io/library/nginx:1.23.0', '1.23.0', 'again');
    expect(twice).toBe(once);
    const config = JSON.parse(once) as { extends: string[]; packageRules: Record<string, unknown>[] };
    expect(config.extends).toEqual(['config:recommended']);
    expect(config.packageRules[0]).toEqual({ matchPackageNames: ['x'], automerge: true });
    expect(config.packageRules[1]).toEqual({ description: `${QUARANTINE_MARK} web 1.23.0 failed [digest sha256:${'e'.repeat(64)}]`, matchDatasources: ['docker'], matchDepNames: ['docker.io/library/nginx'], allowedVersions: '!/^1\\.23\\.0$/' });
    expect(once.endsWith('}\n')).toBe(true);
    const rules = parseQuarantineRules(once);
    expect(rules).toEqual([{ image: 'docker.io/library/nginx', version: '1.23.0', digest: `sha256:${'e'.repeat(64)}`, description: 'web 1.23.0 failed' }]);
    expect(findQuarantine(rules, 'docker.io/library/nginx:1.23.0@sha256:' + 'f'.repeat(64))).toBeDefined();
    expect(findQuarantine(rules, 'docker.io/library/nginx:1.23.1')).toBeUndefined();
    expect(findQuarantine(rules, 'nginx:1.23.0')).toBeUndefined();
    // the failed build pinned under another tag, or another name, is still refused
    expect(findQuarantine(rules, `docker.io/library/nginx:1.23.0-fixed@sha256:${'e'.repeat(64)}`)).toBeDefined();
    expect(findQuarantine(rules, `mirror.example/nginx:stable@sha256:${'e'.repeat(64)}`)).toBeDefined();
    expect(findQuarantine(rules, `docker.io/library/nginx:1.23.1@sha256:${'f'.repeat(64)}`)).toBeUndefined();
  });

  it('reads renovate.json by shape: rules of the wrong shape are not the agent\'s, and nothing throws', () => {
    for (const json of ['null', '[]', '{"packageRules": {}}', '{"packageRules": [null, 3, "x"]}', `{"packageRules": [{"description": 5}, {"description": "${QUARANTINE_MARK} x", "allowedVersions": 7, "matchDepNames": [1]}]}`]) {
      expect(parseQuarantineRules(json), json).toEqual([]);
    }
  });

  it('ignores rules people wrote, and broken JSON', () => {
    expect(parseQuarantineRules(JSON.stringify({ packageRules: [{ description: 'mine', matchDepNames: ['a'], allowedVersions: '!/^1$/' }] }))).toEqual([]);
    expect(parseQuarantineRules('{ not json')).toEqual([]);
  });

  it.each([
    ['127.0.0.1:5000/fixture/web:1.3.0@sha256:' + 'a'.repeat(64), '127.0.0.1:5000/fixture/web'],
    ['nginx:1.27', 'nginx'],
    ['registry.example:443/a/b', 'registry.example:443/a/b'],
  ])('imageName(%s) = %s', (ref, name) => {
    expect(imageName(ref)).toBe(name);
  });
});
