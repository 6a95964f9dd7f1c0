import type { Clock } from '../../core/clock.js';
import { isoTime } from '../../core/clock.js';
import { AgentError, errorMessage } from '../../core/errors.js';
import { asRevision } from '../../core/ids.js';
import type { SourceFile } from '../../model/source.js';
import type { DesiredSource } from '../../ports/source.js';
import type { SourceSnapshot } from '../../model/source.js';
import { redactUrl } from './credentials.js';
import type { GitRepo } from './repo.js';
import type { SignatureVerdict } from './signature.js';

const YAML_FILE = /^[^.].*\.ya?ml$/;
const READ_LIMIT_BYTES = 4 * 1024 * 1024;

export interface GitSourceOptions {
  repo: GitRepo;
  /** Directory of the desired state inside the repository ('' for the root). */
  path: string;
  renovateConfigPath: string;
  /** When set, the tip commit must carry a signature this accepts (a trusted key). */
  verify?: (payload: string, signature: string | undefined) => Promise<SignatureVerdict>;
  clock: Clock;
}

/**
 * Desired state from the tracked branch of a Git repository. A failed fetch does not stop the
 * agent: the last commit fetched successfully is used (drift is still repaired) and the error
 * is reported with the snapshot.
 */
export function createGitSource(o: GitSourceOptions): DesiredSource & { repo: GitRepo } {
  let lastFetchedAt: string | undefined;
  return {
    kind: 'git',
    location: redactUrl(o.repo.url),
    branch: o.repo.branch,
    path: o.path,
    repo: o.repo,
    async read(signal): Promise<SourceSnapshot> {
      let tip: string | undefined;
      let fetchError: string | undefined;
      try {
        tip = await o.repo.fetch(signal);
        lastFetchedAt = isoTime(o.clock);
      } catch (err) {
        fetchError = errorMessage(err);
        tip = await o.repo.lastFetched();
        if (!tip) throw err instanceof AgentError ? err : new AgentError('SOURCE_UNAVAILABLE', fetchError, { cause: err });
      }
      const info = await o.repo.commitInfo(tip);
      const files: SourceFile[] = [];
      for (const e of (await o.repo.listFiles(tip, o.path)).filter((x) => YAML_FILE.test(x.path)).sort((a, b) => a.path.localeCompare(b.path))) {
        const blob = await o.repo.readBlob(e.oid);
        const path = o.path ? `${o.path}/${e.path}` : e.path;
        files.push(blob.length > READ_LIMIT_BYTES ? { path, content: '', bytes: blob.length } : { path, content: blob.toString('utf8') });
      }
      const snapshot: SourceSnapshot = {
        revision: asRevision(tip),
        files,
        commit: { sha: tip, subject: info.subject, author: info.author, time: info.time },
      };
      if (fetchError) snapshot.fetchError = fetchError;
      if (lastFetchedAt) snapshot.fetchedAt = lastFetchedAt;
      const renovate = await o.repo.readFile(tip, o.renovateConfigPath);
      if (renovate !== undefined) snapshot.renovateConfig = { path: o.renovateConfigPath, content: renovate };
      if (o.verify) {
        const { payload, signature } = await o.repo.signedPayload(tip);
        const verdict = await o.verify(payload, signature);
        if (!verdict.ok) snapshot.signatureRefused = verdict.reason;
      }
      return snapshot;
    },
  };
}
