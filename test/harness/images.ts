/**
 * Offline fixture images, built once per test run: a busybox-static rootfs is imported as a
 * base, then one small build per version of the fixture app "web" (busybox httpd) is pushed
 * to the test registry as <registry>/fixture/web:<version>.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type Docker from 'dockerode';
import { buildImage, importRootfs, pushImage } from './docker-util.js';

export { buildPostgresImage, ensurePostgresImage, type PostgresImage } from './postgres.js';

/** The local-only base image (never pushed, never pulled). */
export const BUSYBOX_BASE = 'gadt-local/busybox:base';
export const WEB_REPOSITORY = 'fixture/web';
/** Port the web fixture listens on when PORT is not set. */
export const WEB_DEFAULT_PORT = 18080;

/**
 * What each version does:
 * - healthy: httpd on 127.0.0.1:$PORT, Docker HEALTHCHECK on "/", /www/health = "ok";
 * - crash: prints "fatal: config invalid" to stderr and exits 3 at start;
 * - unhealthy: httpd runs, HEALTHCHECK always fails, no /www/health (probe gets 404);
 * - slow: sleeps $SLOW_SECONDS (default 4) before httpd starts, long start period;
 * - nohealthcheck: healthy app without any Docker HEALTHCHECK (agent-side probes only).
 */
export const FIXTURE_BEHAVIOUR = {
  '1.0.0': 'healthy',
  '1.1.0': 'healthy',
  '1.2.0': 'healthy',
  '1.3.0': 'crash',
  '1.4.0': 'unhealthy',
  '1.5.0': 'slow',
  '1.6.0': 'nohealthcheck',
  '2.0.0': 'healthy',
} as const;

export type FixtureVersion = keyof typeof FIXTURE_BEHAVIOUR;
export const FIXTURE_VERSIONS = Object.keys(FIXTURE_BEHAVIOUR) as FixtureVersion[];

export interface FixtureImage {
  version: FixtureVersion;
  tag: string;
  /** `<registry>/fixture/web:<tag>` */
  ref: string;
  /** Manifest digest in the registry, `sha256:...` */
  digest: string;
  /** `<ref>@<digest>` */
  pinned: string;
}

export type FixtureImages = Record<FixtureVersion, FixtureImage>;

/** `<registry>/fixture/web:<version>` */
export function fixtureRef(registryHost: string, version: string): string {
  return `${registryHost}/${WEB_REPOSITORY}:${version}`;
}

/** Build the busybox-static rootfs and import it as BUSYBOX_BASE (recipe make-busybox-image.sh). */
export async function buildBusyboxBase(docker: Docker): Promise<void> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find(existsSync);
  if (!busybox) throw new Error('busybox not found: install busybox-static (scripts/ensure-host.sh)');
  const root = mkdtempSync(join(tmpdir(), 'gadt-bb-'));
  try {
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'www', 'root', 'var/run']) {
      mkdirSync(join(root, d), { recursive: true });
    }
    chmodSync(join(root, 'tmp'), 0o1777);
    copyFileSync(busybox, join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    for (const applet of execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n')) {
      if (!applet || existsSync(join(root, applet))) continue;
      mkdirSync(dirname(join(root, applet)), { recursive: true });
      symlinkSync('/bin/busybox', join(root, applet));
    }
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    await importRootfs(docker, root, BUSYBOX_BASE);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// LISTEN: 127.0.0.1 with host networking (the network rule); 0.0.0.0 on a network of the test engine.
const HTTPD = 'exec httpd -f -p ${LISTEN}:${PORT} -h /www';
const PROBE = 'wget -q -O /dev/null http://127.0.0.1:${PORT}/ || exit 1';

/** Dockerfile and context of one fixture version. */
function webContext(version: FixtureVersion): Record<string, string> {
  const kind = FIXTURE_BEHAVIOUR[version];
  // Docker's first check comes one interval after start: short, so that its own health says healthy
  // soon after the agent's gate (which runs the same command at once) has passed.
  let health = `HEALTHCHECK --interval=500ms --timeout=2s --start-period=1s --retries=3 CMD ${PROBE}`;
  let cmd = HTTPD;
  const files: Record<string, string> = { 'index.html': `${version}\n`, health: 'ok\n' };
  if (kind === 'crash') cmd = 'echo "fatal: config invalid" >&2; exit 3';
  if (kind === 'unhealthy') {
    health = 'HEALTHCHECK --interval=500ms --timeout=2s --retries=2 CMD false';
    delete files.health;
  }
  if (kind === 'slow') {
    health = `HEALTHCHECK --interval=1s --timeout=2s --start-period=60s --retries=3 CMD ${PROBE}`;
    cmd = `sleep "\${SLOW_SECONDS}"; ${HTTPD}`;
  }
  if (kind === 'nohealthcheck') health = '';
  const dockerfile = [
    `FROM ${BUSYBOX_BASE}`,
    ...Object.keys(files).map((f) => `COPY ${f} /www/${f}`),
    `ENV PORT=${WEB_DEFAULT_PORT} LISTEN=127.0.0.1 SLOW_SECONDS=4 APP_VERSION=${version}`,
    `LABEL org.opencontainers.image.version="${version}" org.opencontainers.image.title="fixture-web"`,
    health,
    `CMD ${JSON.stringify(['sh', '-c', cmd])}`,
  ];
  return { Dockerfile: `${dockerfile.filter(Boolean).join('\n')}\n`, ...files };
}

/**
 * Build every fixture version on `engine` and push it to `registry`. The builds run in
 * parallel (the legacy builder copes) and share the imported base layer, so this takes
 * a few seconds.
 */
export async function buildFixtureImages(
  engine: { docker: Docker },
  registry: { host: string },
): Promise<FixtureImages> {
  const { docker } = engine;
  await buildBusyboxBase(docker);
  const built = await Promise.all(
    FIXTURE_VERSIONS.map(async (version): Promise<FixtureImage> => {
      const ref = fixtureRef(registry.host, version);
      await buildImage(docker, ref, webContext(version));
      const digest = await pushImage(docker, ref);
      return { version, tag: version, ref, digest, pinned: `${ref}@${digest}` };
    }),
  );
  return Object.fromEntries(built.map((img) => [img.version, img])) as FixtureImages;
}
