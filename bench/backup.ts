/**
 * Backup of a 1 GiB volume: the agent (`agent backup create`, tar through the Docker API,
 * gzip level 3, sha256, stored in a local directory) beside `tar | gzip` of the same data
 * in the same run, and the agent's peak memory (target: under 150 MB whatever the size).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { startTestEngine } from '../test/harness/engine.js';
import { buildFixtureImages } from '../test/harness/images.js';
import { startRegistry } from '../test/harness/registry.js';
import { CLI, measure, median, mib } from './lib.js';

export interface BackupBenchResult {
  dataBytes: number;
  runs: number;
  agent: { medianMs: number; mibPerSecond: number; peakRssMiB: number; archiveBytes: number };
  tarGzip: { medianMs: number; mibPerSecond: number; archiveBytes: number };
}

const SIZE = Number(process.env.BENCH_BACKUP_BYTES ?? 1024 * 1024 * 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** Base64 of random bytes: compressible like real data (about 3:4), but not trivially. */
async function fill(dir: string, bytes: number): Promise<void> {
  const fileSize = 64 * 1024 * 1024;
  for (let i = 0; i * fileSize < bytes; i++) {
    const out = createWriteStream(join(dir, `part-${i}.txt`));
    for (let written = 0; written < Math.min(fileSize, bytes - i * fileSize); written += 1024 * 1024) {
      if (!out.write(randomBytes(786_432).toString('base64'))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  }
}

export async function benchBackup(log: (s: string) => void): Promise<BackupBenchResult> {
  const engine = await startTestEngine();
  const registry = await startRegistry();
  const root = mkdtempSync(join(tmpdir(), 'bench-backup-'));
  try {
    const images = await buildFixtureImages(engine, registry);
    const source = join(root, 'desired');
    mkdirSync(source);
    writeFileSync(
      join(source, 'stack.yaml'),
      `name: bench\nservices:\n  data:\n    image: ${images['1.0.0'].pinned}\n    network_mode: host\n    init: true\n    environment: {PORT: "18999"}\n    volumes: ["bulk:/data"]\n    x-agent:\n      backup: {volumes: [bulk], consistency: live}\n      health: {timeout: 30s, stabilization: 1s}\nvolumes:\n  bulk: {}\n`,
    );
    const args = (cmd: string[]) => [CLI, ...cmd, '--source', source, '--state-dir', join(root, 'state'), '--docker-host', engine.dockerHost];
    const env = { AGENT_LOG_LEVEL: 'warn', AGENT_HOST_NAME: 'bench', AGENT_BACKUP_DIR: join(root, 'backups') };
    const applied = await measure(process.execPath, args(['apply']), env);
    if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
    const volume = join(engine.dir, 'data', 'volumes', 'bench_bulk', '_data');
    log(`filling ${mib(SIZE)} MiB into ${volume}`);
    await fill(volume, SIZE);

    const agentMs: number[] = [];
    const agentRss: number[] = [];
    const tarMs: number[] = [];
    let agentArchive = 0;
    let tarArchive = 0;
    for (let i = 0; i < RUNS; i++) {
      const a = await measure(process.execPath, args(['backup', 'create', 'data', '--json']), env);
      if (a.code !== 0) throw new Error(`backup failed: ${a.stderr}`);
      agentMs.push(a.ms);
      agentRss.push(a.maxRssKiB / 1024);
      agentArchive = (JSON.parse(a.stdout) as { backups: { artifacts: { bytes: number }[] }[] }).backups[0]?.artifacts[0]?.bytes ?? 0;
      const out = join(root, `peer-${i}.tar.gz`);
      const t = await measure('/bin/sh', ['-c', `tar -C "${volume}" -cf - . | gzip > "${out}"`]);
      if (t.code !== 0) throw new Error(`tar | gzip failed: ${t.stderr}`);
      tarMs.push(t.ms);
      tarArchive = statSync(out).size;
      rmSync(out);
      log(`run ${i + 1}: agent ${(a.ms / 1000).toFixed(1)} s, peak RSS ${(a.maxRssKiB / 1024).toFixed(0)} MiB; tar | gzip ${(t.ms / 1000).toFixed(1)} s`);
    }
    const rate = (ms: number) => SIZE / 1024 / 1024 / (ms / 1000);
    return {
      dataBytes: SIZE,
      runs: RUNS,
      agent: { medianMs: median(agentMs), mibPerSecond: rate(median(agentMs)), peakRssMiB: Math.max(...agentRss), archiveBytes: agentArchive },
      tarGzip: { medianMs: median(tarMs), mibPerSecond: rate(median(tarMs)), archiveBytes: tarArchive },
    };
  } finally {
    await engine.stop();
    await registry.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
