/**
 * `npm run bench`: runs the benchmarks, prints the figures and writes them to
 * docs/benchmarks.md (between markers, so that the prose around them stays).
 * BENCH_ONLY=backup runs one; BENCH_RUNS sets the repetitions (medians are reported).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { benchBackup, type BackupBenchResult } from './backup.js';
import { mib } from './lib.js';

const DOC = resolve(import.meta.dirname, '../docs/benchmarks.md');
const only = process.env.BENCH_ONLY;
const log = (s: string) => process.stderr.write(`${s}\n`);

function backupSection(r: BackupBenchResult): string {
  return [
    `Backup of a ${mib(r.dataBytes)} MiB volume (base64 text: compresses about 3:4), median of ${r.runs} runs:`,
    '',
    '| | time | throughput | archive | peak memory |',
    '| --- | --- | --- | --- | --- |',
    `| agent: \`agent backup create\` (Docker API tar, gzip -3, sha256, local store) | ${(r.agent.medianMs / 1000).toFixed(1)} s | ${r.agent.mibPerSecond.toFixed(0)} MiB/s | ${mib(r.agent.archiveBytes)} MiB | ${r.agent.peakRssMiB.toFixed(0)} MiB (target < 150 MB) |`,
    `| peer: \`tar -c \\| gzip\` of the same directory | ${(r.tarGzip.medianMs / 1000).toFixed(1)} s | ${r.tarGzip.mibPerSecond.toFixed(0)} MiB/s | ${mib(r.tarGzip.archiveBytes)} MiB | - |`,
    '',
    `Ratio agent / peer (time): ${(r.agent.medianMs / r.tarGzip.medianMs).toFixed(2)}.`,
  ].join('\n');
}

function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${start}\n${body}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  return i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
}

const header = `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')}Z on ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, with \`npm run bench\`.`;
let doc = readFileSync(DOC, 'utf8');
if (!only || only === 'backup') {
  const r = await benchBackup(log);
  const section = `${header}\n\n${backupSection(r)}`;
  log(section);
  doc = replaceSection(doc, 'backup', section);
}
writeFileSync(DOC, doc);
log(`written to ${DOC}`);
