/**
 * Signatures that mean something: not only the tip, but every commit between the last verified
 * one and the new tip (first parent: the branch's own history, merges included, the commits a
 * merge brings in vouched for by the merge commit's signer). The new tip must descend from the
 * last verified commit: a force-push back to an older signed commit (a downgrade) is refused
 * unless the operator allows rewinds.
 */
import type { GitReader } from '../../ports/git.js';
import type { SignatureVerdict } from './signature.js';

export type ChainVerdict = { ok: true; verified: number } | { ok: false; reason: string };

export interface ChainOptions {
  verify: (payload: string, signature: string | undefined) => Promise<SignatureVerdict>;
  /** Accept a tip that does not descend from the base, verifying it alone. */
  allowRewind: boolean;
  /** At most this many commits are walked back from the tip. */
  limit?: number;
}

const DEFAULT_LIMIT = 1000;

/** `base`: the last commit verified (none on a first start: the tip is verified alone). */
export async function verifyChain(repo: Pick<GitReader, 'commitInfo' | 'signedPayload'>, base: string | undefined, tip: string, o: ChainOptions): Promise<ChainVerdict> {
  if (base === tip) return { ok: true, verified: 0 };
  const limit = o.limit ?? DEFAULT_LIMIT;
  let chain: string[] = [tip];
  if (base !== undefined) {
    const walked: string[] = [];
    let at: string | undefined = tip;
    let reached = false;
    while (at !== undefined && walked.length < limit) {
      if (at === base) {
        reached = true;
        break;
      }
      walked.push(at);
      at = (await repo.commitInfo(at)).parents[0];
    }
    if (reached) chain = walked;
    else if (!o.allowRewind) {
      const why = walked.length >= limit ? `more than ${limit} commits lead from it back to` : 'it does not descend from';
      return { ok: false, reason: `the tip ${short(tip)} is refused: ${why} ${short(base)}, the last verified commit (a force-push, or a branch rewritten); to accept it, set source.git.verify.allowRewind` };
    }
  }
  // Oldest first: the first commit refused is the one to name.
  for (const sha of [...chain].reverse()) {
    const { payload, signature } = await repo.signedPayload(sha);
    const verdict = await o.verify(payload, signature);
    if (!verdict.ok) return { ok: false, reason: sha === tip ? verdict.reason : `commit ${short(sha)}, between the last verified ${short(base as string)} and the tip ${short(tip)}: ${verdict.reason}` };
  }
  return { ok: true, verified: chain.length };
}

function short(sha: string): string {
  return sha.slice(0, 12);
}
