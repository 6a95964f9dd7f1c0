/**
 * Access to the run's shared environment from inside integration test files (workers).
 */
import Docker from 'dockerode';
import { inject } from 'vitest';
import type { FixtureImages } from './images.js';

export interface Harness {
  /** A client of the run's private engine (never the host's own engine). */
  docker: Docker;
  dockerHost: string;
  socketPath: string;
  engineDir: string;
  registryHost: string;
  registryDir: string;
  images: FixtureImages;
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
  };
}
