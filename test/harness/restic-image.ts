/**
 * A real restic image, built offline in about a second from the host's Debian `restic` package
 * (scripts/ensure-host.sh installs it): /restic, the shared libraries `ldd` lists for it (glibc
 * and its loader: Debian's restic links nothing else) and an empty /tmp (1777). No shell, no
 * /etc/passwd. Loaded with `docker import` semantics (ENTRYPOINT ["/restic"]) and pushed as
 * <registry>/restic:<version>.
 *
 * Inside a container, always pass `--host <fixed name>` to `restic backup` (the hostname is the
 * container id otherwise: no parent snapshot is found and `forget` groups break).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import { resticRootfs } from '../../agent/backup/restic/local-image.js';
import { drain, pushImage } from './docker-util.js';
import { registryDigest } from './postgres.js';

export const RESTIC_REPOSITORY = 'restic';
/** The version Debian 12 ships; the tag claims it, so the host binary is checked against it. */
export const RESTIC_VERSION = '0.14.0';
const RESTIC_BIN = '/usr/bin/restic';

export interface ResticImage {
  /** `<registry>/restic:<version>` */
  ref: string;
  /** Manifest digest in the registry, `sha256:...` */
  digest: string;
  /** `<ref>@<digest>` */
  pinned: string;
}

/** `<registry>/restic:<version>` */
export function resticRef(registryHost: string): string {
  return `${registryHost}/${RESTIC_REPOSITORY}:${RESTIC_VERSION}`;
}

/** Import the rootfs as `ref` in `docker` (no registry involved). */
async function importResticImage(docker: Docker, ref: string): Promise<void> {
  if (!existsSync(RESTIC_BIN)) throw new Error(`restic image: ${RESTIC_BIN} not found: install restic (scripts/ensure-host.sh)`);
  const version = /restic (\d+\.\d+\.\d+)/.exec(execFileSync(RESTIC_BIN, ['version'], { encoding: 'utf8' }))?.[1];
  if (version !== RESTIC_VERSION) {
    throw new Error(`restic image: the host's restic is ${version ?? 'of unknown version'}, the image is tagged ${RESTIC_VERSION}`);
  }
  const colon = ref.lastIndexOf(':');
  const stream = await docker.importImage(resticRootfs(RESTIC_BIN), {
    repo: ref.slice(0, colon),
    tag: ref.slice(colon + 1),
    changes: ['ENTRYPOINT ["/restic"]'],
  });
  await drain(stream, `import of ${ref}`);
}

/**
 * The restic image in `registryHost`'s registry (and in `docker`): built only if the registry
 * does not have it yet, pushed only if the engine does not have it yet either.
 */
export async function buildResticImage(docker: Docker, registryHost: string): Promise<ResticImage> {
  const ref = resticRef(registryHost);
  let digest = await registryDigest(registryHost, RESTIC_REPOSITORY, RESTIC_VERSION);
  if (!digest) {
    const local = await docker.getImage(ref).inspect().then(
      () => true,
      (err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      },
    );
    if (!local) await importResticImage(docker, ref);
    digest = await pushImage(docker, ref);
  }
  return { ref, digest, pinned: `${ref}@${digest}` };
}
