/**
 * A real nginx image (Debian's nginx 1.22 binary, its libraries and busybox), built offline in
 * seconds and pushed as <registry>/fixture/nginx:<tag>. Like the official image: it reads
 * /etc/nginx/conf.d/*.conf, runs in the foreground, logs to its output, stops on SIGQUIT.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { buildImage, importRootfs, pushImage } from './docker-util.js';
import { registryDigest, type PostgresImage } from './postgres.js';

export const NGINX_REPOSITORY = 'fixture/nginx';
const ROOTFS_REF = 'gadt-local/nginx-rootfs:1.22';
const HERE = dirname(fileURLToPath(import.meta.url));
/** The downloaded packages, kept between runs: one download per machine. */
const DEB_CACHE = join(tmpdir(), 'gadt-nginx-debs');

/** The image at `tag`, built only if the registry does not have it yet. */
export async function ensureNginxImage(engine: { docker: Docker }, registry: { host: string }, tag = '1.22.1'): Promise<PostgresImage> {
  const ref = `${registry.host}/${NGINX_REPOSITORY}:${tag}`;
  const known = await registryDigest(registry.host, NGINX_REPOSITORY, tag);
  if (known) return { tag, ref, digest: known, pinned: `${ref}@${known}` };
  const root = mkdtempSync(join(tmpdir(), 'gadt-nginx-'));
  try {
    await promisify(execFile)('bash', [join(HERE, 'nginx', 'make-rootfs.sh'), root, DEB_CACHE], { maxBuffer: 16 << 20 }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`building the nginx rootfs failed: ${err.message}\n${err.stderr ?? ''}`);
    });
    await importRootfs(engine.docker, root, ROOTFS_REF);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  await buildImage(engine.docker, ref, {
    Dockerfile: `FROM ${ROOTFS_REF}\nSTOPSIGNAL SIGQUIT\nEXPOSE 80\nLABEL org.opencontainers.image.version="${tag}"\nCMD ["nginx"]\n`,
  });
  const digest = await pushImage(engine.docker, ref);
  return { tag, ref, digest, pinned: `${ref}@${digest}` };
}

/** nginx as the reference stack configures it: the upstream's name resolved per request, the next address tried on error. */
export const RESOLVING_NGINX_CONF = (upstream: string) => `server {
    listen 80;
    resolver 127.0.0.11 valid=1s ipv6=off;
    location / {
        set $upstream ${upstream};
        proxy_pass $upstream;
        proxy_connect_timeout 1s;
        proxy_next_upstream error timeout http_502 http_503;
    }
}
`;
