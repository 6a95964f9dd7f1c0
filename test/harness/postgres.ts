/**
 * A real PostgreSQL 15 image built from the host's postgresql-15 binaries (no network, a few
 * seconds), pushed as <registry>/fixture/postgres:<tag>. It runs as user postgres, listens on
 * 127.0.0.1:$PGPORT (host networking: always set PGPORT), runs initdb on first start
 * (POSTGRES_PASSWORD / POSTGRES_USER / POSTGRES_DB like the official image) and has a
 * pg_isready HEALTHCHECK and STOPSIGNAL SIGINT (fast clean shutdown).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { buildImage, importRootfs, pushImage } from './docker-util.js';

export const POSTGRES_REPOSITORY = 'fixture/postgres';
const ROOTFS_REF = 'gadt-local/postgres-rootfs:15';
const HERE = dirname(fileURLToPath(import.meta.url));

export interface PostgresImage {
  tag: string;
  ref: string;
  digest: string;
  pinned: string;
}

const DOCKERFILE = `FROM ${ROOTFS_REF}
ENV PATH=/usr/lib/postgresql/15/bin:/usr/bin:/bin PGDATA=/var/lib/postgresql/data PGPORT=5432 LANG=C.UTF-8
USER postgres
STOPSIGNAL SIGINT
HEALTHCHECK --interval=1s --timeout=3s --start-period=2s --retries=30 CMD pg_isready -q -h 127.0.0.1 -p "$PGPORT" || exit 1
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
`;

/** Build the image on `engine`, push it to `registry` and return its reference and digest. */
export async function buildPostgresImage(
  engine: { docker: Docker },
  registry: { host: string },
  tag = '15.8',
): Promise<PostgresImage> {
  const root = mkdtempSync(join(tmpdir(), 'gadt-pg-'));
  try {
    await promisify(execFile)('bash', [join(HERE, 'postgres', 'make-rootfs.sh'), root], { maxBuffer: 16 << 20 }).catch(
      (err: Error & { stderr?: string }) => {
        throw new Error(`building the PostgreSQL rootfs failed: ${err.message}\n${err.stderr ?? ''}`);
      },
    );
    await importRootfs(engine.docker, root, ROOTFS_REF);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const ref = `${registry.host}/${POSTGRES_REPOSITORY}:${tag}`;
  await buildImage(engine.docker, ref, {
    Dockerfile: `${DOCKERFILE}LABEL org.opencontainers.image.version="${tag}"\n`,
  });
  const digest = await pushImage(engine.docker, ref);
  return { tag, ref, digest, pinned: `${ref}@${digest}` };
}

/** Digest of `repository:tag` in the registry, undefined when it is not there. */
export async function registryDigest(registryHost: string, repository: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`http://${registryHost}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`registry ${registryHost}: HEAD ${repository}:${tag}: HTTP ${res.status}`);
  return res.headers.get('docker-content-digest') ?? undefined;
}

/**
 * The PostgreSQL image, built only if the registry does not have it yet: test files call
 * this in beforeAll, and only the first one of a run pays for the build.
 */
export async function ensurePostgresImage(
  engine: { docker: Docker },
  registry: { host: string },
  tag = '15.8',
): Promise<PostgresImage> {
  const digest = await registryDigest(registry.host, POSTGRES_REPOSITORY, tag);
  if (digest === undefined) return buildPostgresImage(engine, registry, tag);
  const ref = `${registry.host}/${POSTGRES_REPOSITORY}:${tag}`;
  return { tag, ref, digest, pinned: `${ref}@${digest}` };
}
