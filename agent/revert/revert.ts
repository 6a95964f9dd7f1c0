import type { RevertRequest, RevertResult } from '../model/revert.js';
import type { Logger } from 'pino';
import { isoTime, type Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { canonicalJson } from '../core/canonical.js';
import { asRevision } from '../core/ids.js';
import { loadDesiredState } from '../desired/load.js';
import type { ProjectRoots } from '../desired/project-files.js';
import { gitProjectTree } from '../source/project-tree.js';
import type { Env } from '../desired/interpolate.js';
import type { CommitSigner, FileChange, GitPort, Identity } from '../ports/git.js';
import type { ProjectTree } from '../model/source.js';
import { addQuarantineRule, imageTag } from '../renovate/quarantine.js';
import { restoreServiceBlock, serviceBlock } from './edit.js';

export interface RevertDeps {
  repo: GitPort;
  /** Directory of the desired state inside the repository ('' for the root). */
  path: string;
  renovateConfigPath: string;
  identity: Identity;
  signer?: CommitSigner;
  /** Quote the failed container's output (logs, health check output) in the commit: off by default, a repository is often read more widely than the host. */
  commitContainerOutput?: boolean;
  /** With commit verification on: why the tip may not carry a revert (an unverified commit on it), or undefined. */
  verifyTip?: (tip: string) => Promise<string | undefined>;
  maxAttempts: number;
  host: string;
  /** Active Compose profiles, as the agent loads the desired state. */
  profiles?: readonly string[];
  /** The Compose files of the project, in order, as the agent loads the desired state. */
  composeFiles?: readonly string[];
  env: Env;
  defaultStack: string;
  /** As the agent loads the desired state: the spec hashes of relative binds depend on them. */
  roots: ProjectRoots;
  /** The host's key for spec hashes, as the agent loads the desired state. */
  hashKey?: Buffer;
  clock: Clock;
  log: Logger;
  /** Crash and race tests stop here: `before:revert-push`, `after:revert-push`. */
  failpoint?: (name: string) => void;
}

const HISTORY_DEPTH = 200;

/**
 * Writes the rollback back to Git: a commit on the tracked branch that restores the service's
 * block from the commit where it last worked, and adds a Renovate rule that stops the failed
 * version from being proposed again. When the branch moved meanwhile, the revert is rebuilt
 * on the new tip (or dropped, when the new tip no longer asks for the failed spec).
 */
export async function revertFailedUpdate(deps: RevertDeps, req: RevertRequest): Promise<RevertResult> {
  const { repo, log } = deps;
  let lastReason = '';
  for (let attempt = 1; attempt <= deps.maxAttempts; attempt++) {
    const tip = await repo.fetch();
    const unverified = await deps.verifyTip?.(tip);
    if (unverified !== undefined) return { status: 'refused', reason: `not building a revert on the tip ${tip.slice(0, 12)}, which is not verified: ${unverified}` };
    const files = await yamlFiles(deps, tip);
    const envPath = deps.path ? `${deps.path}/.env` : '.env';
    const dotEnv = await repo.readFile(tip, envPath);
    const tree = await gitProjectTree(repo, tip, deps.path);
    const loaded = loadDesiredState({ files: files.map((f) => ({ path: f.path, content: f.content })), revision: asRevision(tip), env: deps.env, defaultStack: deps.defaultStack, roots: deps.roots, ...(deps.hashKey ? { hashKey: deps.hashKey } : {}), tree, ...(deps.profiles && deps.profiles.length > 0 ? { profiles: deps.profiles } : {}), ...(deps.composeFiles && deps.composeFiles.length > 0 ? { composeFiles: deps.composeFiles } : {}), ...(dotEnv !== undefined ? { dotEnv: { path: envPath, content: dotEnv } } : {}) });
    if (!loaded.ok) return { status: 'failed', reason: `the tip ${tip.slice(0, 12)} is not a valid desired state; not reverting on top of it` };
    if (loaded.state.services[req.service]?.hash !== req.failedHash) {
      return { status: 'not-needed', reason: `the tip ${tip.slice(0, 12)} no longer asks for the failed spec of ${req.service}` };
    }
    const tipFile = files.find((f) => serviceBlock(f.content, req.service) !== undefined);
    const goodFiles = await yamlFiles(deps, req.goodRevision).catch(() => []);
    const goodFile = goodFiles.find((f) => serviceBlock(f.content, req.service) !== undefined);
    if (!tipFile || !goodFile) return { status: 'failed', reason: `cannot find service ${req.service} at ${tipFile ? req.goodRevision.slice(0, 12) : tip.slice(0, 12)}` };

    const culprit = await findCulprit(deps, tip, req.goodRevision, req.service);
    const changes: Record<string, FileChange> = { [tipFile.path]: restoreServiceBlock(tipFile.content, goodFile.content, req.service) };
    // The repository's files the failed spec binds, as they were where it last worked.
    for (const m of loaded.state.services[req.service]?.spec.volumes ?? []) if (m.project) Object.assign(changes, await restoreProjectFiles(deps, tree, req.goodRevision, m.project.path));
    const failedTag = imageTag(req.failedImage);
    const quarantine = failedTag && failedTag !== imageTag(req.goodImage) ? failedTag : undefined;
    if (quarantine) {
      const why = `${req.service} ${quarantine} failed on ${deps.host} at ${req.at} (${firstLine(deps.commitContainerOutput ? req.reason : withoutOutput(req.reason))}). Remove this rule to allow it again.`;
      changes[deps.renovateConfigPath] = addQuarantineRule(await repo.readFile(tip, deps.renovateConfigPath), req.failedImage, quarantine, why);
    }
    const message = revertMessage(deps, req, culprit, quarantine);
    const sha = await repo.commitFiles(tip, changes, message, deps.identity, deps.signer);
    deps.failpoint?.('before:revert-push');
    const pushed = await repo.push(sha);
    deps.failpoint?.('after:revert-push');
    if (pushed.ok) {
      log.info({ service: req.service, commit: sha, reverts: culprit.sha }, 'Revert commit pushed');
      return quarantine ? { status: 'pushed', sha, reverts: culprit.sha, quarantined: quarantine } : { status: 'pushed', sha, reverts: culprit.sha };
    }
    if (pushed.kind !== 'non-fast-forward') return { status: 'refused', reason: `${pushed.kind === 'auth' ? 'credentials refused' : 'push refused'}: ${pushed.reason}` };
    lastReason = pushed.reason;
    log.warn({ service: req.service, attempt }, 'The branch moved while the revert was made; rebuilding it on the new tip');
  }
  return { status: 'failed', reason: `the branch kept moving: ${deps.maxAttempts} attempts (${lastReason})` };
}

/**
 * The revert commit made for this very request (its trailers name the failed version and the
 * rollback time), when it is on the branch: pushed by an agent that died before recording it.
 */
export async function findOwnRevert(deps: Pick<RevertDeps, 'repo'>, req: RevertRequest): Promise<RevertResult | undefined> {
  const tip = await deps.repo.lastFetched();
  if (!tip) return undefined;
  const mine = (await deps.repo.log(tip, HISTORY_DEPTH)).find((c) => c.body.includes(`\nFailed-version: ${req.failedImage}\nRolled-back-at: ${req.at}\n`));
  if (!mine) return undefined;
  const reverts = /^Reverts: (\S+)$/m.exec(mine.body)?.[1] ?? '';
  const quarantined = /^Version (\S+) is quarantined in /m.exec(mine.body)?.[1];
  return quarantined ? { status: 'pushed', sha: mine.sha, reverts, quarantined } : { status: 'pushed', sha: mine.sha, reverts };
}

/** The changes that make the files under `path` (relative to the desired-state directory) what they were at `good`. */
async function restoreProjectFiles(deps: RevertDeps, tipTree: ProjectTree, good: string, path: string): Promise<Record<string, FileChange>> {
  const goodTree = await gitProjectTree(deps.repo, good, deps.path);
  const inside = (t: ProjectTree) => new Map(t.entries.filter((e) => e.kind !== 'dir' && (e.path === path || path === '.' || e.path.startsWith(`${path}/`))).map((e) => [e.path, e]));
  const [before, now] = [inside(goodTree), inside(tipTree)];
  const full = (p: string) => (deps.path ? `${deps.path}/${p}` : p);
  const changes: Record<string, FileChange> = {};
  for (const [p, e] of before) {
    if (e.kind === 'symlink') continue; // links are refused by the loader; nothing to restore
    const cur = now.get(p);
    if (cur?.id !== e.id || (cur.executable === true) !== (e.executable === true)) changes[full(p)] = { content: await deps.repo.readBlob(e.id), executable: e.executable === true };
  }
  for (const p of now.keys()) if (!before.has(p)) changes[full(p)] = null;
  return changes;
}

async function yamlFiles(deps: RevertDeps, sha: string): Promise<{ path: string; content: string }[]> {
  const entries = (await deps.repo.listFiles(sha, deps.path)).filter((e) => /^[^.].*\.ya?ml$/.test(e.path));
  const out: { path: string; content: string }[] = [];
  for (const e of entries) out.push({ path: deps.path ? `${deps.path}/${e.path}` : e.path, content: (await deps.repo.readBlob(e.oid)).toString('utf8') });
  return out;
}

/** The newest commit between the good one and the tip that changed the service's block: the one being reverted. */
async function findCulprit(deps: RevertDeps, tip: string, good: string, service: string): Promise<{ sha: string; subject: string }> {
  const history = await deps.repo.log(tip, HISTORY_DEPTH);
  const blockAt = async (sha: string) => {
    for (const f of await yamlFiles(deps, sha)) {
      const b = serviceBlock(f.content, service);
      if (b !== undefined) return canonicalJson(b);
    }
    return undefined;
  };
  for (const c of history) {
    if (c.sha === good) break;
    const parent = c.parents[0];
    if (!parent) return { sha: c.sha, subject: c.subject };
    try {
      if ((await blockAt(c.sha)) !== (await blockAt(parent))) return { sha: c.sha, subject: c.subject };
    } catch (err) {
      deps.log.warn({ commit: c.sha, err: errorMessage(err) }, 'Cannot compare commit with its parent');
    }
  }
  const head = history[0];
  return { sha: head?.sha ?? tip, subject: head?.subject ?? 'update' };
}

function revertMessage(deps: RevertDeps, req: RevertRequest, culprit: { sha: string; subject: string }, quarantined: string | undefined): string {
  const lines = [
    `Revert "${culprit.subject.replace(/^Revert "(.*)"$/, '$1')}"`,
    '',
    `The update of ${req.service} from ${req.goodImage} to ${req.failedImage} failed on ${deps.host}`,
    `and was rolled back at ${req.at}. This commit puts the ${req.service} service back to its`,
    `definition at ${req.goodRevision.slice(0, 12)}, so that this branch says what runs.`,
    '',
    `Failed check: ${deps.commitContainerOutput ? req.reason : withoutOutput(req.reason)}`,
  ];
  if (req.logs && deps.commitContainerOutput) lines.push('', 'Output of the failed container (last lines):', ...req.logs.split('\n').slice(-15).map((l) => `    ${l}`));
  else if (req.logs || withoutOutput(req.reason) !== req.reason) lines.push('', `The failed container's output is not quoted here (source.git.commitContainerOutput is off): \`agent status\` on ${deps.host} shows it.`);
  if (quarantined) lines.push('', `Version ${quarantined} is quarantined in ${deps.renovateConfigPath}: Renovate will not propose it again,`, 'and the agent refuses it until the rule is removed. Later versions are still proposed.');
  lines.push('', `Reverts: ${culprit.sha}`, `Failed-version: ${req.failedImage}`, `Rolled-back-at: ${req.at}`, `Rolled-back-by: gitops-agent on ${deps.host}`, `Recorded-at: ${isoTime(deps.clock)}`);
  return `${lines.join('\n')}\n`;
}

/** A failure's reason without what the container printed (`; output: ...`, `log: ...`): the agent's own words only. */
function withoutOutput(reason: string): string {
  return (reason.split('\n')[0] ?? reason).replace(/;? *(output|log|logs): .*$/i, '');
}

function firstLine(s: string): string {
  const l = s.split('\n')[0] ?? s;
  return l.length > 160 ? `${l.slice(0, 160)}...` : l;
}
