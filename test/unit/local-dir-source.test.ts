import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDesiredState, snapshotInput } from '../../agent/desired/load.js';
import { createLocalDirSource } from '../../agent/source/local-dir.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('a directory source', () => {
  it('names a symlinked *.yaml instead of skipping it without a word', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dir-source-'));
    writeFileSync(join(dir, 'real.yaml'), 'services: {}\n');
    writeFileSync(join(dir, 'elsewhere.txt'), 'services: {}\n');
    symlinkSync(join(dir, 'elsewhere.txt'), join(dir, 'compose.yaml'));
    const snap = await createLocalDirSource(dir).read();
    expect(snap.files.map((f) => f.path)).toEqual(['real.yaml']);
    expect(snap.refusedFiles).toEqual([{ path: 'compose.yaml', why: expect.stringContaining(`is a symbolic link (to ${join(dir, 'elsewhere.txt')})`) }]);
  });

  it('reads renovate.json from where the configuration says', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dir-source-'));
    writeFileSync(join(dir, 'compose.yaml'), 'services: {}\n');
    writeFileSync(join(dir, 'my-renovate.json'), '{"packageRules": []}\n');
    const snap = await createLocalDirSource(dir, { renovateConfig: join(dir, 'my-renovate.json') }).read();
    expect(snap.renovateConfig).toEqual({ path: join(dir, 'my-renovate.json'), content: '{"packageRules": []}\n' });
  });
});

describe('the project .env', () => {
  it('is read beside the Compose files and used for interpolation, the agent\'s environment on top', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dir-source-'));
    writeFileSync(join(dir, 'compose.yaml'), `name: x\nservices:\n  web:\n    image: reg.example:5000/web:\${WEB_TAG}@sha256:${'a'.repeat(64)}\n    environment: {MODE: "\${MODE}"}\n`);
    writeFileSync(join(dir, '.env'), '# the project\'s defaults\nWEB_TAG=1.2.0\nMODE="from-dotenv"\n');
    const snap = await createLocalDirSource(dir).read();
    expect(snap.dotEnv).toEqual({ path: '.env', content: expect.stringContaining('WEB_TAG=1.2.0') });
    const r = loadDesiredState(snapshotInput(snap, { env: { MODE: 'from-the-agent' }, defaultStack: 'x', policy: undefined, roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' } }));
    expect(r.ok && r.state.services.web?.spec).toMatchObject({ image: expect.stringContaining('web:1.2.0@'), environment: { MODE: 'from-the-agent' } });
    // A changed .env is a new revision of the desired state.
    writeFileSync(join(dir, '.env'), 'WEB_TAG=1.3.0\nMODE=x\n');
    expect((await createLocalDirSource(dir).read()).revision).not.toBe(snap.revision);
  });

  it('a symlinked .env is refused by name', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dir-source-'));
    writeFileSync(join(dir, 'compose.yaml'), 'services: {}\n');
    writeFileSync(join(dir, 'real.env'), 'A=1\n');
    symlinkSync(join(dir, 'real.env'), join(dir, '.env'));
    expect((await createLocalDirSource(dir).read()).refusedFiles).toEqual([{ path: '.env', why: expect.stringContaining('symbolic link') }]);
  });
});
