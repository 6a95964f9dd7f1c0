/**
 * An offline stand-in for `node:20-bookworm-slim`, the base image of the agent's Dockerfile:
 * the tests never pull from Docker Hub, so they build the agent image FROM this one instead
 * (`--build-arg NODE_IMAGE=...`).
 *
 * It is made from the host itself, the way make-pg-from-host.sh makes PostgreSQL: the host's
 * Node 20 binary (`process.execPath`) and the shared libraries `ldd` lists for it, the host's
 * npm, busybox-static for /bin/sh and the usual tools, and the CA bundle, in a merged-/usr
 * Debian layout with the same paths as the official image (/usr/local/bin/node,
 * /usr/local/lib/node_modules/npm, user `node` uid 1000). A few seconds, no network.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type Docker from 'dockerode';
import { buildImage, importRootfs } from './docker-util.js';

/** The local base image (never pushed, never pulled): pass it as the NODE_IMAGE build argument. */
export const NODE_BASE_IMAGE = 'gadt-local/node:20-bookworm-slim';
const ROOTFS_IMAGE = 'gadt-local/node-rootfs:20';

const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Does `p` exist as an entry (a dangling symlink counts)? */
function present(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Copy a host file into the rootfs at its canonical location (directories resolved, so
 * /lib/x86_64-linux-gnu/x lands in usr/lib/... behind the rootfs's /lib -> usr/lib link),
 * keeping a symlink as a symlink and copying what it points to as well.
 */
function copyHostFile(root: string, path: string): void {
  const canon = join(realpathSync(dirname(path)), basename(path));
  const dest = join(root, canon);
  if (present(dest)) return;
  mkdirSync(dirname(dest), { recursive: true });
  const st = lstatSync(canon);
  if (st.isSymbolicLink()) {
    const target = readlinkSync(canon);
    symlinkSync(target, dest);
    copyHostFile(root, resolve(dirname(canon), target));
  } else {
    copyFileSync(canon, dest);
    chmodSync(dest, st.mode & 0o7777);
  }
}

/** The shared libraries a binary loads, with the dynamic loader. */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  if (!libs.some((l) => l.includes('ld-linux'))) throw new Error(`ldd ${binary}: no dynamic loader in\n${out}`);
  return libs;
}

/** The host's npm package directory (the one `npm` on PATH runs, or the one beside node). */
function hostNpmDir(): string {
  const candidates = [join(dirname(process.execPath), '../lib/node_modules/npm')];
  try {
    const npm = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
    // .../node_modules/npm/bin/npm-cli.js
    if (npm) candidates.push(resolve(dirname(realpathSync(npm)), '..'));
  } catch {
    // no npm on PATH: the candidate beside node remains
  }
  const dir = candidates.find((d) => existsSync(join(d, 'bin/npm-cli.js')));
  if (!dir) throw new Error(`npm not found (looked in ${candidates.join(', ')}): the node base image needs it`);
  return realpathSync(dir);
}

/** Lay out the rootfs of the base image in `root`. */
export function makeNodeRootfs(root: string): void {
  if (!process.version.startsWith('v20.')) throw new Error(`the node base image stands in for node:20 but the host runs Node ${process.version}`);
  // merged /usr, as on Debian 12 (and in the official image)
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'usr/local/bin', 'usr/local/lib/node_modules', 'etc/ssl/certs', 'tmp', 'root', 'home/node', 'var/run']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(root, d));
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'root'), 0o700);

  // node and its libraries
  copyFileSync(process.execPath, join(root, 'usr/local/bin/node'));
  chmodSync(join(root, 'usr/local/bin/node'), 0o755);
  for (const lib of sharedLibraries(process.execPath)) copyHostFile(root, lib);

  // npm, linked like the official image does
  cpSync(hostNpmDir(), join(root, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));

  // busybox: sh, env, wget, ... (the official slim image has dash and coreutils)
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find(existsSync);
  if (!busybox) throw new Error('busybox not found: install busybox-static (scripts/ensure-host.sh)');
  copyFileSync(busybox, join(root, 'usr/bin/busybox'));
  chmodSync(join(root, 'usr/bin/busybox'), 0o755);
  for (const applet of execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n')) {
    if (!applet) continue;
    const dest = join(realpathSync(join(root, dirname(applet))), basename(applet));
    if (!present(dest)) symlinkSync('/usr/bin/busybox', dest);
  }

  // CA certificates (node has its own bundle; tools and NODE_EXTRA_CA_CERTS use this one)
  if (existsSync('/etc/ssl/certs/ca-certificates.crt')) copyFileSync('/etc/ssl/certs/ca-certificates.crt', join(root, 'etc/ssl/certs/ca-certificates.crt'));

  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/os-release'), 'PRETTY_NAME="gitops-agent test base (host node + busybox)"\nID=debian\nVERSION_ID="12"\n');
}

/** One build at a time per engine (keyed by its socket), even when several tests ask at once. */
const building = new Map<string, Promise<string>>();

/**
 * Make NODE_BASE_IMAGE exist on the engine (built once per engine, reused after) and return
 * its reference. The rootfs is imported, then a tiny build adds what `docker import` cannot
 * set: PATH, NODE_VERSION and CMD, as in the official image.
 */
export function ensureNodeBaseImage(docker: Docker): Promise<string> {
  const key = String((docker.modem as { socketPath?: unknown }).socketPath ?? 'default');
  const pending = building.get(key);
  if (pending) return pending;
  const p = (async () => {
    const exists = await docker.getImage(NODE_BASE_IMAGE).inspect().then(() => true, () => false);
    if (exists) return NODE_BASE_IMAGE;
    const root = mkdtempSync(join(tmpdir(), 'gadt-node-'));
    try {
      makeNodeRootfs(root);
      await importRootfs(docker, root, ROOTFS_IMAGE);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    await buildImage(docker, NODE_BASE_IMAGE, {
      Dockerfile: [`FROM ${ROOTFS_IMAGE}`, `ENV PATH=${PATH_ENV} NODE_VERSION=${process.version.slice(1)}`, 'CMD ["node"]', ''].join('\n'),
    });
    return NODE_BASE_IMAGE;
  })();
  building.set(key, p);
  // a failed build may be retried; a successful one is remembered
  p.catch(() => building.delete(key));
  return p;
}
