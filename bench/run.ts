/**
 * `npm run bench`: runs the benchmarks, prints the figures and writes them to
 * docs/benchmarks.md (between markers, so that the prose around them stays).
 * BENCH_ONLY=backup (compose, zero-downtime) runs one; BENCH_RUNS sets the repetitions (medians are reported).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { benchBackup, type BackupBenchResult } from './backup.js';
import { benchCompose, type ComposeBenchResult } from './compose.js';
import { mib } from './lib.js';
import { benchZeroDowntime, type Figures, type ZeroDowntimeResult } from './zero-downtime.js';
// The benchmark stacks run on the host network: the test suite's permissive policy, in AGENT_POLICY_FILE.
import '../test/harness/test-policy-setup.js';

const DOC = resolve(import.meta.dirname, '../docs/benchmarks.md');
const only = process.env.BENCH_ONLY;
const log = (s: string) => process.stderr.write(`${s}\n`);

function backupSection(r: BackupBenchResult): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const t = r.tarGzip;
  return [
    `Backups of a ${mib(r.dataBytes)} MiB volume (1024 files of 1 MiB, base64 text: compresses about 3:4), through \`agent backup create\` (the service stopped while its volume is read: consistency stop, then started and health-checked), one run of each:`,
    '',
    '| | agent, restic repository | agent, tar.gz archives | peer: `tar -c \\| gzip` | target |',
    '| --- | --- | --- | --- | --- |',
    `| first backup | ${s(r.restic.firstMs)} | ${s(r.archive.firstMs)} | ${s(t.firstMs)} | |`,
    `| again, nothing changed | ${s(r.restic.unchangedMs)} | ${s(r.archive.unchangedMs)} | ${s(t.unchangedMs)} | < 3 s |`,
    `| again, 1 % of the files rewritten | ${s(r.restic.changedMs)} | ${s(r.archive.changedMs)} | ${s(t.changedMs)} | < 3 s |`,
    ...(r.restic.resticRuns ? [`| of which restic's own runs (unchanged; 1 % changed; the update's backup) | ${[r.restic.resticRuns.unchanged, r.restic.resticRuns.changed, r.restic.resticRuns.update].map((x) => `${s(x.ms)} (${x.commands.join(', ') || 'none'})`).join('; ')} | - | - | |`] : []),
    `| restore (\`agent restore\`: stop, restore, start, health gate; peer: \`tar -xzf\` into an empty folder) | ${s(r.restic.restoreMs)} | ${s(r.archive.restoreMs)} | ${s(t.restoreMs)} | |`,
    `| space taken by the three backups | ${mib(r.restic.storedBytes)} MiB | ${mib(r.archive.storedBytes)} MiB | ${mib(t.storedBytes)} MiB | |`,
    `| HTTP downtime of an update (old stopped, its volume backed up with 1 % changed, new started), probed every 20 ms | ${r.restic.updateDowntimeMs} ms | ${r.archive.updateDowntimeMs} ms | ${s(t.stopBackupStartMs)} (tar \\| gzip alone, as a stop-backup-start would add) | < 3 s |`,
    `| peak memory of the agent | ${r.restic.agentPeakRssMiB.toFixed(0)} MiB | ${r.archive.agentPeakRssMiB.toFixed(0)} MiB | - | < 150 MB |`,
    `| peak memory of restic (resident: anonymous + mapped, sampled every 50 ms from its container's cgroup; the cgroup's own peak, page cache of the files read included: ${r.restic.resticCgroupPeakMiB?.toFixed(0) ?? '-'} MiB) | ${r.restic.resticPeakMiB?.toFixed(0) ?? '-'} MiB | - | - | < 150 MB |`,
  ].join('\n');
}

function composeSection(r: ComposeBenchResult): string {
  const ratio = (a: number, c: number) => (c > 0 ? (a / c).toFixed(2) : '-');
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return [
    `${r.services} services (the web fixture: busybox httpd with a Docker HEALTHCHECK at Docker's default 30 s interval, on the project's network with its port published on 127.0.0.1), medians of ${r.runs} runs; the peer is Debian's docker-compose 1.29 (\`up -d\`) on the same engine, same images, same services.`,
    '',
    '| measure | agent | docker-compose | agent / compose | target |',
    '| --- | --- | --- | --- | --- |',
    `| no-op reconcile, in-process pass of \`agent run\` | ${s(r.noopMs.agentPass)} | ${s(r.noopMs.compose)} | ${ratio(r.noopMs.agentPass, r.noopMs.compose)} | < 0.10 |`,
    `| no-op reconcile, \`agent apply\` as a command (Node start included) | ${s(r.noopMs.agent)} | ${s(r.noopMs.compose)} | ${ratio(r.noopMs.agent, r.noopMs.compose)} | |`,
    `| one image changed among ${r.services}, until healthy (agent: health gate passed; compose: \`up -d\` then serving) | ${s(r.oneChangedMs.agent)} | ${s(r.oneChangedMs.compose)} | ${ratio(r.oneChangedMs.agent, r.oneChangedMs.compose)} | < 1 |`,
    `| downtime of the HTTP service during that update, probed every 20 ms | ${r.downtimeMs.agent} ms | ${r.downtimeMs.compose} ms | ${ratio(r.downtimeMs.agent, r.downtimeMs.compose)} | |`,
    `| rollback: failed verdict -> old version serving (compose: \`up -d\` of the previous image -> serving) | ${r.rollbackMs.agent} ms | ${r.rollbackMs.compose} ms | ${ratio(r.rollbackMs.agent, r.rollbackMs.compose)} | < 2 s |`,
    `| plan of 200 services (compose: \`config -q\`, parsing only) | ${s(r.plan200.agentMs)}, ${r.plan200.agentRssMiB.toFixed(0)} MiB | ${s(r.plan200.composeConfigMs)}, ${r.plan200.composeRssMiB.toFixed(0)} MiB | ${ratio(r.plan200.agentMs, r.plan200.composeConfigMs)} | |`,
    `| idle \`agent run\`, polling every 10 s (compose: \`up -d\` every 10 s in a loop) | ${r.idle.agentRssMiB.toFixed(0)} MiB RSS, ${r.idle.agentCpuSecondsPerMinute.toFixed(2)} CPU s/min | ${r.idle.composeLoopCpuSecondsPerMinute.toFixed(2)} CPU s/min | ${ratio(r.idle.agentCpuSecondsPerMinute, r.idle.composeLoopCpuSecondsPerMinute)} (CPU) | < 80 MB RSS |`,
    '',
    `First deploy of the ${r.services} services: agent ${s(r.firstDeployMs.agent)} (every service through its health gate, 4 at a time), compose ${s(r.firstDeployMs.compose)} (until every service serves); agent / compose ${ratio(r.firstDeployMs.agent, r.firstDeployMs.compose)}, target <= 1.`,
  ].join('\n');
}

function zeroDowntimeSection(r: ZeroDowntimeResult): string {
  const cell = (f: Figures) => `${f.failed} of ${f.requests} failed; gap ${f.longestGapMs} ms; slowest ${f.slowestMs} ms${f.retried ? `; ${f.retried} retried` : ''}`;
  const row = (what: string, s: ZeroDowntimeResult['goodUpdate'], target: string) => `| ${what} | ${cell(s.agentStartFirst)} | ${cell(s.agentStopFirst)} | ${cell(s.compose)} | ${target} |`;
  return [
    `A request every 10 ms through nginx (the fixture nginx, resolving the app's name through Docker's DNS per request: \`resolver 127.0.0.11 valid=1s\`, \`proxy_next_upstream error timeout\`) to a stateless app (the web fixture), from the command's start to 1.5 s after its end; medians of ${r.runs} runs. Three stacks of the same images on one engine: the agent with \`order: start-first\` (drain 2 s) and nginx's \`x-agent.reload\`, the agent with the defaults (stop-first; nginx recreated), and Debian's docker-compose 1.29. "Gap": the longest stretch of sending times in which no request succeeded; "slowest": the longest a successful request took; "retried": requests sent again once because nginx closed their kept-alive connection under them (as a browser does).`,
    '',
    '| scenario | agent, start-first (nginx reloaded) | agent, stop-first (nginx recreated) | docker-compose | target |',
    '| --- | --- | --- | --- | --- |',
    row('(a) a good update of the app (compose: `up -d`)', r.goodUpdate, '0 failed, start-first'),
    row('(b) a version that crashes at start, rolled back (compose: `up -d`, then `up -d` of the previous version once `docker ps` shows the crash)', r.failedUpdate, '0 failed, start-first'),
    row("(c) nginx's configuration only, a header added (compose: `restart nginx`)", r.nginxConfig, '0 failed, reload'),
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
if (!only || only === 'compose') {
  const r = await benchCompose(log);
  const section = `${header}\n\n${composeSection(r)}`;
  log(section);
  doc = replaceSection(doc, 'compose', section);
}
if (!only || only === 'zero-downtime') {
  const r = await benchZeroDowntime(log);
  const section = `${header}\n\n${zeroDowntimeSection(r)}`;
  log(section);
  doc = replaceSection(doc, 'zero-downtime', section);
}
writeFileSync(DOC, doc);
log(`written to ${DOC}`);
