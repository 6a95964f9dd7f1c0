import type { Clock } from '../../core/clock.js';
import { isoTime } from '../../core/clock.js';
import { AgentError, errorMessage, isAgentError, type ErrorCode } from '../../core/errors.js';
import { asRevision } from '../../core/ids.js';
import type { ProjectTree, SourceFile } from '../../model/source.js';
import { gitProjectTree } from '../project-tree.js';
import type { DesiredSource } from '../../ports/source.js';
import type { SourceSnapshot } from '../../model/source.js';
import type { GitReader } from '../../ports/git.js';
import type { SignatureVerdict } from './signature.js';
import { verifyChain } from './chain.js';

const YAML_FILE = /^[^.].*\.ya?ml$/;
const READ_LIMIT_BYTES = 4 * 1024 * 1024;

export interface GitSourceOptions {
  repo: GitReader;
  /** Directory of the desired state inside the repository ('' for the root). */
  path: string;
  renovateConfigPath: string;
  /** When set, every commit from the last verified one to the tip must carry a signature this accepts (a trusted key). */
  verify?: (payload: string, signature: string | undefined) => Promise<SignatureVerdict>;
  /** With verify: a tip that does not descend from the last verified commit is accepted (verified alone). */
  allowRewind?: boolean;
  clock: Clock;
  /** Read the last fetched commit without fetching (read-only commands beside a running agent). */
  offline?: boolean;
}

/**
 * Desired state from the tracked branch of a Git repository. A failed fetch does not stop the
 * agent: the last commit fetched successfully is used (drift is still repaired) and the error
 * is reported with the snapshot.
 */
export function createGitSource(o: GitSourceOptions): DesiredSource & { repo: GitReader } {
  let lastFetchedAt: string | undefined;
  // The project tree of the last commit read: most reads are of the same commit.
  let cached: { sha: string; tree: ProjectTree } | undefined;
  const treeAt = async (sha: string): Promise<ProjectTree> => {
    if (cached?.sha !== sha) cached = { sha, tree: await gitProjectTree(o.repo, sha, o.path) };
    return cached.tree;
  };
  return {
    kind: 'git',
    location: o.repo.location,
    branch: o.repo.branch,
    path: o.path,
    repo: o.repo,
    remoteRevision: (signal) => o.repo.remoteTip(signal),
    async project(revision) {
      return { tree: await treeAt(revision), read: (e) => o.repo.readBlob(e.id) };
    },
    async read(signal): Promise<SourceSnapshot> {
      if (o.offline) {
        const tip = await o.repo.lastFetched();
        if (!tip) throw new AgentError('SOURCE_UNAVAILABLE', `nothing fetched yet from ${o.repo.location}: the agent fetches it on its first pass`, { data: { location: o.repo.location } });
        return snapshotAt(o, tip);
      }
      let tip: string | undefined;
      let fetchError: string | undefined;
      let fetchErrorCode: ErrorCode | undefined;
      try {
        tip = await o.repo.fetch(signal);
        lastFetchedAt = isoTime(o.clock);
      } catch (err) {
        fetchError = errorMessage(err);
        fetchErrorCode = isAgentError(err) ? err.code : 'SOURCE_UNAVAILABLE';
        tip = await o.repo.lastFetched();
        if (!tip) throw err instanceof AgentError ? err : new AgentError('SOURCE_UNAVAILABLE', fetchError, { cause: err });
      }
      const snapshot = await snapshotAt(o, tip);
      snapshot.tree = await treeAt(tip);
      if (fetchError) snapshot.fetchError = fetchError;
      if (fetchErrorCode) snapshot.fetchErrorCode = fetchErrorCode;
      if (lastFetchedAt) snapshot.fetchedAt = lastFetchedAt;
      return snapshot;
    },
  };
}

/** The desired state at a commit: its YAML files, renovate.json, and the signature verdict. */
async function snapshotAt(o: GitSourceOptions, tip: string): Promise<SourceSnapshot> {
  const info = await o.repo.commitInfo(tip);
  const files: SourceFile[] = [];
  for (const e of (await o.repo.listFiles(tip, o.path)).filter((x) => YAML_FILE.test(x.path)).sort((a, b) => a.path.localeCompare(b.path))) {
    const blob = await o.repo.readBlob(e.oid);
    const path = o.path ? `${o.path}/${e.path}` : e.path;
    files.push(blob.length > READ_LIMIT_BYTES ? { path, content: '', bytes: blob.length } : { path, content: blob.toString('utf8') });
  }
  const refusedFiles = (await o.repo.listSymlinks(tip, o.path))
    .filter((p) => YAML_FILE.test(p))
    .map((p) => ({ path: o.path ? `${o.path}/${p}` : p, why: 'is a symbolic link in the repository, which the agent does not follow: commit the file itself' }));
  const snapshot: SourceSnapshot = { revision: asRevision(tip), files, commit: { sha: tip, subject: info.subject, author: info.author, time: info.time } };
  if (refusedFiles.length > 0) snapshot.refusedFiles = refusedFiles;
  const envPath = o.path ? `${o.path}/.env` : '.env';
  const dotEnv = await o.repo.readFile(tip, envPath);
  if (dotEnv !== undefined) snapshot.dotEnv = { path: envPath, content: dotEnv };
  const renovate = await o.repo.readFile(tip, o.renovateConfigPath);
  if (renovate !== undefined) snapshot.renovateConfig = { path: o.renovateConfigPath, content: renovate };
  if (o.verify) {
    const verdict = await verifyChain(o.repo, await o.repo.trustedBase(), tip, { verify: o.verify, allowRewind: o.allowRewind === true });
    if (!verdict.ok) snapshot.signatureRefused = verdict.reason;
    // The next tip is checked from here; a read-only command beside the agent records nothing.
    else if (!o.offline) await o.repo.setTrustedBase(tip);
  } else if (!o.offline && (await o.repo.trustedBase()) !== undefined) await o.repo.setTrustedBase(undefined);
  return snapshot;
}
