/**
 * Access to the run's shared environment from inside integration test files (workers).
 */
import Docker from 'dockerode';
import { inject } from 'vitest';
import { fixtureRef, type FixtureImages } from './images.js';
import { resticRef, type ResticImage } from './restic-image.js';

export interface Harness {
  /** A client of the run's private engine (never the host's own engine). */
  docker: Docker;
  dockerHost: string;
  socketPath: string;
  engineDir: string;
  registryHost: string;
  registryDir: string;
  images: FixtureImages;
  /** The restic image (ENTRYPOINT ["/restic"], no shell): run it with the pinned reference. */
  resticImage: ResticImage;
}

export function harness(): Harness {
  const socketPath = inject('socketPath');
  if (!socketPath) throw new Error('no test engine: run this file in the vitest "integration" project');
  return {
    docker: new Docker({ socketPath }),
    dockerHost: inject('dockerHost'),
    socketPath,
    engineDir: inject('engineDir'),
    registryHost: inject('registryHost'),
    registryDir: inject('registryDir'),
    images: inject('images'),
    resticImage: inject('resticImage'),
  };
}

/**
 * The run's harness seen through an engine and a registry of the test's own (which it may
 * restart or stop, unlike the shared ones): the fixture images under that registry's host,
 * with the same digests (start the registry with `seedFrom: harness().registryDir`). The restic
 * image is in that storage too: global-setup pushes it before any test starts.
 */
export function harnessOn(engine: { docker: Docker; dockerHost: string; socketPath: string; dir: string }, registry: { host: string; storageDir: string }): Harness {
  const base = harness();
  const images = Object.fromEntries(
    Object.entries(base.images).map(([v, img]) => {
      const ref = fixtureRef(registry.host, v);
      return [v, { ...img, ref, pinned: `${ref}@${img.digest}` }];
    }),
  ) as FixtureImages;
  const restic = resticRef(registry.host);
  const resticImage = { ...base.resticImage, ref: restic, pinned: `${restic}@${base.resticImage.digest}` };
  return { docker: engine.docker, dockerHost: engine.dockerHost, socketPath: engine.socketPath, engineDir: engine.dir, registryHost: registry.host, registryDir: registry.storageDir, images, resticImage };
}
