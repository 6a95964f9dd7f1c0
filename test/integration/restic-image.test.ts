/**
 * The restic image of the harness is a working restic: it initialises a repository in one
 * volume, backs up another (mounted read-only) and lists the snapshot, all without a network.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_LABEL, runToEnd } from '../harness/containers.js';
import { uniqueName } from '../harness/ports.js';
import { harness } from '../harness/provided.js';
import { buildResticImage, resticRef } from '../harness/restic-image.js';

const h = harness();
const label = uniqueName('restic');
const repoVolume = uniqueName('restic-repo');
const dataVolume = uniqueName('restic-data');
const PASSWORD = 'correct horse battery staple';

const resticEnv = [`RESTIC_PASSWORD=${PASSWORD}`, 'RESTIC_PROGRESS_FPS=2'];
const restic = (args: string[], binds: string[]) => runToEnd(h.docker, { image: h.resticImage.pinned, cmd: ['--repo', '/repo', ...args], binds, env: resticEnv, labelValue: label });
const run = (docker: typeof h.docker, image: string, cmd: string[], binds: string[]) => runToEnd(docker, { image, cmd, binds, labelValue: label });

beforeAll(async () => {
  await h.docker.createVolume({ Name: repoVolume, Labels: { [TEST_LABEL]: label } });
  await h.docker.createVolume({ Name: dataVolume, Labels: { [TEST_LABEL]: label } });
  // the restic image has no shell: write the files to back up with the busybox fixture image
  const fill = await run(
    h.docker,
    h.images['1.0.0'].pinned,
    ['sh', '-c', 'mkdir -p /data/sub && printf one > /data/a.txt && printf two > /data/sub/b.txt && head -c 100000 /dev/urandom > /data/blob.bin'],
    [`${dataVolume}:/data`],
  );
  expect(fill.code, fill.stderr).toBe(0);
});

afterAll(async () => {
  const list = await h.docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${label}`] } });
  await Promise.all(list.map((c) => h.docker.getContainer(c.Id).remove({ force: true, v: true })));
  await Promise.allSettled([repoVolume, dataVolume].map((v) => h.docker.getVolume(v).remove()));
});

describe('restic image', () => {
  it('is pinned in the registry, and a second build finds it there', async () => {
    expect(h.resticImage.ref).toBe(`${h.registryHost}/restic:0.14.0`);
    expect(h.resticImage.ref).toBe(resticRef(h.registryHost));
    expect(h.resticImage.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(h.resticImage.pinned).toBe(`${h.resticImage.ref}@${h.resticImage.digest}`);
    expect(await buildResticImage(h.docker, h.registryHost)).toEqual(h.resticImage);
    const info = await h.docker.getImage(h.resticImage.pinned).inspect();
    expect(info.Config.Entrypoint).toEqual(['/restic']);
    console.log(`[restic-image] ${h.resticImage.pinned}: ${(info.Size / 1e6).toFixed(1)} MB`);
  });

  it('runs: version, init, backup --json, snapshots --json (network none)', async () => {
    const version = await run(h.docker, h.resticImage.pinned, ['version'], []);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^restic 0\.14\.0 /);

    const init = await restic(['init'], [`${repoVolume}:/repo`]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain('created restic repository');

    const binds = [`${repoVolume}:/repo`, `${dataVolume}:/data:ro`];
    const backup = await restic(['backup', '--host', 'fixed', '--json', '/data'], binds);
    expect(backup.code, backup.stderr).toBe(0);
    const lines = backup.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { message_type: string; snapshot_id?: string; files_new?: number; total_files_processed?: number });
    const summary = lines.find((l) => l.message_type === 'summary');
    expect(summary?.snapshot_id).toMatch(/^[0-9a-f]{8,}$/);
    expect(summary?.files_new).toBe(3);

    const snapshots = await restic(['snapshots', '--json'], [`${repoVolume}:/repo`]);
    expect(snapshots.code, snapshots.stderr).toBe(0);
    const list = JSON.parse(snapshots.stdout) as { id: string; short_id: string; hostname: string; paths: string[] }[];
    expect(list).toHaveLength(1);
    expect(list[0]?.hostname).toBe('fixed');
    expect(list[0]?.paths).toEqual(['/data']);
    expect(list[0]?.id.startsWith(summary?.snapshot_id ?? '-')).toBe(true);
  });
});
