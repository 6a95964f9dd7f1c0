/**
 * Backups of a 1 GiB volume (1024 files of 1 MiB): the agent with its two formats (a restic
 * repository, plain tar.gz archives) beside `tar | gzip` of the same files in the same run:
 * first backup, again with nothing changed, again with 1 % of the files rewritten, restore, the
 * space three backups take, the downtime a stop-consistency update adds, and peak memory of the
 * agent and of restic (its container's cgroup peak).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { startTestEngine } from '../test/harness/engine.js';
import { buildFixtureImages } from '../test/harness/images.js';
import { startRegistry } from '../test/harness/registry.js';
import { buildResticImage } from '../test/harness/restic-image.js';
import { CLI, measure, mib } from './lib.js';
import { longestOutage, startProbe } from './probe.js';

export interface FormatFigures {
  firstMs: number;
  unchangedMs: number;
  changedMs: number;
  restoreMs: number;
  /** Stored after the three backups. */
  storedBytes: number;
  /** HTTP downtime of an update of the service (stop-consistency backup of its volume, 1 % changed). */
  updateDowntimeMs: number;
  agentPeakRssMiB: number;
  /** restic's resident memory (anonymous + mapped), sampled. */
  resticPeakMiB?: number;
  /** The peak of restic's memory cgroup: the page cache of the files it read included. */
  resticCgroupPeakMiB?: number;
  /** restic format: the time of restic's own runs within each command (the agent's debug timings), and what they were. */
  resticRuns?: { unchanged: ResticRuns; changed: ResticRuns; update: ResticRuns };
}

export interface ResticRuns {
  ms: number;
  commands: string[];
}

/** The restic runs of a command, from its debug log: `{"msg":"restic","command":...,"ms":...}`. */
function resticRuns(stderr: string): ResticRuns {
  const runs = stderr
    .split('\n')
    .filter((l) => l.includes('"msg":"restic"'))
    .map((l) => JSON.parse(l) as { command: string; ms: number });
  return { ms: runs.reduce((n, r) => n + r.ms, 0), commands: runs.map((r) => r.command) };
}

export interface BackupBenchResult {
  dataBytes: number;
  restic: FormatFigures;
  archive: FormatFigures;
  tarGzip: { firstMs: number; unchangedMs: number; changedMs: number; restoreMs: number; storedBytes: number; stopBackupStartMs: number };
}

const SIZE = Number(process.env.BENCH_BACKUP_BYTES ?? 1024 * 1024 * 1024);
const FILE = 1024 * 1024;
const PORTS = { restic: 18998, archive: 18999 } as const;

/** Base64 of random bytes (compressible like real data, about 3:4), in 1 MiB files. */
function fill(dir: string, bytes: number): void {
  for (let i = 0; i * FILE < bytes; i++) writeFileSync(join(dir, `part-${String(i).padStart(5, '0')}.txt`), randomBytes((FILE * 3) / 4).toString('base64'));
}

/** Rewrites 1 % of the files (at least one), spread over the set. */
function changeOnePercent(dir: string): void {
  const files = readdirSync(dir).sort();
  const n = Math.max(1, Math.round(files.length / 100));
  for (let i = 0; i < n; i++) writeFileSync(join(dir, files[Math.floor((i * files.length) / n)] as string), randomBytes((FILE * 3) / 4).toString('base64'));
}

function du(path: string): number {
  let total = 0;
  for (const p of readdirSync(path, { recursive: true })) {
    const st = statSync(join(path, String(p)));
    if (st.isFile()) total += st.size;
  }
  return total;
}

/**
 * Samples the memory of the agent's restic containers every 50 ms while `fn` runs, from their
 * memory cgroup (v1 under the engine's cgroup parent, or v2): the resident memory of restic
 * (anonymous + mapped file pages: `rss` + `mapped_file`, v2 `anon` + `file_mapped`), and the
 * cgroup's own peak, which counts the page cache of every file restic read as well.
 */
async function resticPeak<T>(docker: Docker, fn: () => Promise<T>): Promise<{ value: T; peakMiB: number; cgroupPeakMiB: number }> {
  let peak = 0;
  let cgroupPeak = 0;
  let running = true;
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  const stat = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const sample = (async () => {
    while (running) {
      const list = await docker.listContainers({ filters: { label: ['io.gitops-agent.role=restic'] } }).catch(() => []);
      for (const c of list) {
        const v1 = (() => {
          try {
            return readdirSync('/sys/fs/cgroup/memory').map((d) => `/sys/fs/cgroup/memory/${d}/${c.Id}`);
          } catch {
            return [];
          }
        })();
        for (const dir of v1) {
          const text = read(`${dir}/memory.stat`);
          if (!text) continue;
          peak = Math.max(peak, stat(text, 'rss') + stat(text, 'mapped_file'));
          cgroupPeak = Math.max(cgroupPeak, Number(read(`${dir}/memory.max_usage_in_bytes`) ?? 0));
        }
        for (const dir of [`/sys/fs/cgroup/system.slice/docker-${c.Id}.scope`, `/sys/fs/cgroup/docker/${c.Id}`]) {
          const text = read(`${dir}/memory.stat`);
          if (!text) continue;
          peak = Math.max(peak, stat(text, 'anon') + stat(text, 'file_mapped'));
          cgroupPeak = Math.max(cgroupPeak, Number(read(`${dir}/memory.peak`) ?? 0));
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return { value: await fn(), peakMiB: peak / 1024 / 1024, cgroupPeakMiB: cgroupPeak / 1024 / 1024 };
  } finally {
    running = false;
    await sample;
  }
}

export async function benchBackup(log: (s: string) => void): Promise<BackupBenchResult> {
  const engine = await startTestEngine();
  const registry = await startRegistry();
  const root = mkdtempSync(join(tmpdir(), 'bench-backup-'));
  try {
    const images = await buildFixtureImages(engine, registry);
    const restic = await buildResticImage(engine.docker, registry.host);
    const figures = async (format: 'restic' | 'archive'): Promise<{ f: FormatFigures; volume: string }> => {
      const dir = join(root, format);
      const source = join(dir, 'desired');
      mkdirSync(source, { recursive: true });
      const stack = (changed: string) =>
        `name: bench-${format}\nservices:\n  data:\n    image: ${images['1.0.0'].pinned}\n    network_mode: host\n    init: true\n    environment: {PORT: "${PORTS[format]}", CHANGED: "${changed}"}\n    volumes: ["bulk:/data"]\n    x-agent:\n      backup: {volumes: [bulk], consistency: stop}\n      health: {timeout: 30s, stabilization: 1s}\nvolumes:\n  bulk: {}\n`;
      writeFileSync(join(source, 'stack.yaml'), stack('0'));
      const args = (cmd: string[]) => [CLI, ...cmd, '--source', source, '--state-dir', join(dir, 'state'), '--docker-host', engine.dockerHost];
      const env = { AGENT_LOG_LEVEL: format === 'restic' ? 'debug' : 'warn', AGENT_HOST_NAME: 'bench', AGENT_BACKUP_DIR: join(dir, 'backups'), ...(format === 'restic' ? { AGENT_BACKUP_RESTIC_IMAGE: restic.pinned } : { AGENT_BACKUP_FORMAT: 'archive' }) };
      const run = async (cmd: string[]) => {
        const { value, peakMiB, cgroupPeakMiB } = await resticPeak(engine.docker, () => measure(process.execPath, args(cmd), env));
        if (value.code !== 0) throw new Error(`${cmd.join(' ')} failed: ${value.stderr}`);
        return { ...value, resticMiB: peakMiB, resticCgroupMiB: cgroupPeakMiB };
      };
      await run(['apply']);
      const volume = join(engine.dir, 'data', 'volumes', `bench-${format}_bulk`, '_data');
      log(`${format}: filling ${mib(SIZE)} MiB into ${volume}`);
      fill(volume, SIZE);
      const first = await run(['backup', 'create', 'data', '--json']);
      const unchanged = await run(['backup', 'create', 'data', '--json']);
      changeOnePercent(volume);
      const changed = await run(['backup', 'create', 'data', '--json']);
      const storedBytes = du(join(dir, 'backups'));
      // an update: the old container stops, its volume is backed up (1 % changed), the new one starts
      changeOnePercent(volume);
      writeFileSync(join(source, 'stack.yaml'), stack('1'));
      const probe = startProbe(`http://127.0.0.1:${PORTS[format]}/`, 20);
      const update = await run(['apply']);
      const updateDowntimeMs = longestOutage(await probe.stop());
      const latest = (JSON.parse((await run(['backup', 'list', '--json'])).stdout) as { id: string }[])[0]?.id as string;
      const restore = await run(['restore', latest, '--yes', '--no-safety-backup']);
      const all = [first, unchanged, changed, update, restore];
      const f: FormatFigures = { firstMs: first.ms, unchangedMs: unchanged.ms, changedMs: changed.ms, restoreMs: restore.ms, storedBytes, updateDowntimeMs, agentPeakRssMiB: Math.max(...all.map((m) => m.maxRssKiB / 1024)) };
      if (format === 'restic') {
        f.resticPeakMiB = Math.max(...all.map((m) => m.resticMiB));
        f.resticCgroupPeakMiB = Math.max(...all.map((m) => m.resticCgroupMiB));
        f.resticRuns = { unchanged: resticRuns(unchanged.stderr), changed: resticRuns(changed.stderr), update: resticRuns(update.stderr) };
      }
      log(`${format}: first ${(f.firstMs / 1000).toFixed(1)} s, unchanged ${(f.unchangedMs / 1000).toFixed(1)} s, 1 % changed ${(f.changedMs / 1000).toFixed(1)} s, restore ${(f.restoreMs / 1000).toFixed(1)} s, stored ${mib(storedBytes)} MiB, update downtime ${updateDowntimeMs} ms`);
      return { f, volume };
    };
    const r = await figures('restic');
    const a = await figures('archive');

    // the peer, on the same files: three archives, one with 1 % changed; then an extraction
    const peer = async (i: number) => {
      const t = await measure('/bin/sh', ['-c', `tar -C "${r.volume}" -cf - . | gzip > "${join(root, `peer-${i}.tar.gz`)}"`]);
      if (t.code !== 0) throw new Error(`tar | gzip failed: ${t.stderr}`);
      return t.ms;
    };
    const p1 = await peer(1);
    const p2 = await peer(2);
    changeOnePercent(r.volume);
    const p3 = await peer(3);
    const storedBytes = [1, 2, 3].reduce((n, i) => n + statSync(join(root, `peer-${i}.tar.gz`)).size, 0);
    mkdirSync(join(root, 'peer-restore'));
    const x = await measure('/bin/sh', ['-c', `tar -C "${join(root, 'peer-restore')}" -xzf "${join(root, 'peer-3.tar.gz')}"`]);
    return { dataBytes: SIZE, restic: r.f, archive: a.f, tarGzip: { firstMs: p1, unchangedMs: p2, changedMs: p3, restoreMs: x.ms, storedBytes, stopBackupStartMs: p3 } };
  } finally {
    await engine.stop();
    await registry.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
