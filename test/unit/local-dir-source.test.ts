import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
