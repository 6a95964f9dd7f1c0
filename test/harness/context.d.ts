/**
 * What test/harness/global-setup.ts provides to the integration tests: read it with
 * `inject('dockerHost')` etc. from 'vitest', or all at once with `harness()` from
 * test/harness/provided.ts. Only serialisable values cross from the setup to the workers.
 */
import type { FixtureImages } from './images.js';
import type { ResticImage } from './restic-image.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `unix:///tmp/gadt-xxxxxxxx/docker.sock` of the run's private engine. */
    dockerHost: string;
    socketPath: string;
    engineDir: string;
    /** `127.0.0.1:PORT` of the run's registry. */
    registryHost: string;
    /** Storage directory of the run's registry: pass as `seedFrom` to clone its content. */
    registryDir: string;
    images: FixtureImages;
    /** `<registry>/restic:0.14.0` and its manifest digest (test/harness/restic-image.ts). */
    resticImage: ResticImage;
  }
}
