/**
 * vitest globalSetup of the integration project: ONE private engine, ONE registry and the
 * fixture images (the web fixture versions and restic) for the whole run. Anything that cannot
 * start fails the run loudly: integration tests are never skipped.
 */
import type { TestProject } from 'vitest/node';
import { startTestEngine, type TestEngine } from './engine.js';
import { buildFixtureImages } from './images.js';
import { startRegistry, type TestRegistry } from './registry.js';
import { buildResticImage } from './restic-image.js';

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  let engine: TestEngine | undefined;
  let registry: TestRegistry | undefined;
  const teardown = async (): Promise<void> => {
    await Promise.allSettled([engine?.stop(), registry?.stop()]);
  };
  try {
    const [e, r] = await Promise.allSettled([startTestEngine(), startRegistry()]);
    if (e.status === 'fulfilled') engine = e.value;
    if (r.status === 'fulfilled') registry = r.value;
    if (e.status === 'rejected') throw e.reason;
    if (r.status === 'rejected') throw r.reason;
    if (!engine || !registry) throw new Error('unreachable');
    const t1 = Date.now();
    const e1 = engine;
    const [images, resticImage] = await Promise.all([
      buildFixtureImages(e1, registry),
      buildResticImage(e1.docker, registry.host).then(async (img) => {
        const { Size } = await e1.docker.getImage(img.ref).inspect();
        console.log(`[harness] restic image ${img.pinned}: ${(Size / 1e6).toFixed(1)} MB in ${Date.now() - t1} ms`);
        return img;
      }),
    ]);
    provide('dockerHost', engine.dockerHost);
    provide('socketPath', engine.socketPath);
    provide('engineDir', engine.dir);
    provide('registryHost', registry.host);
    provide('registryDir', registry.storageDir);
    provide('images', images);
    provide('resticImage', resticImage);
    console.log(
      `[harness] engine ${engine.dockerHost}, registry ${registry.host}: up in ${t1 - t0} ms, fixture images in ${Date.now() - t1} ms`,
    );
  } catch (err) {
    await teardown();
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(
      `[harness] the integration test environment could not start (run scripts/ensure-host.sh as root?):\n${msg}`,
      { cause: err },
    );
  }
  return teardown;
}
