import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../agent/source/git/chain.js';
import type { CommitInfo } from '../../agent/ports/git.js';

/** A linear history a <- b <- c <- d (and e, a side branch off b); a commit "signed" when its signature is 'good'. */
function repo(unsigned: string[] = []) {
  const parents: Record<string, string[]> = { a: [], b: ['a'], c: ['b', 'x'], d: ['c'], e: ['b'] };
  const verified: string[] = [];
  return {
    verified,
    repo: {
      commitInfo: async (sha: string): Promise<CommitInfo> => ({ sha, subject: sha, body: '', author: 'x', time: '', parents: parents[sha] ?? [] }),
      signedPayload: async (sha: string) => (unsigned.includes(sha) ? { payload: sha } : { payload: sha, signature: 'good' }),
    },
    verify: async (payload: string, signature: string | undefined) => {
      verified.push(payload);
      return signature === 'good' ? ({ ok: true, fingerprint: 'f' } as const) : ({ ok: false, reason: 'commit is not signed' } as const);
    },
  };
}

describe('every commit from the last verified one to the tip', () => {
  it('verifies each commit since the base, oldest first, first parent only', async () => {
    const r = repo();
    expect(await verifyChain(r.repo, 'a', 'd', { verify: r.verify, allowRewind: false })).toEqual({ ok: true, verified: 3 });
    expect(r.verified).toEqual(['b', 'c', 'd']);
  });

  it('refuses a tip whose history holds an unsigned commit, naming it', async () => {
    const r = repo(['b']);
    expect(await verifyChain(r.repo, 'a', 'd', { verify: r.verify, allowRewind: false })).toEqual({ ok: false, reason: 'commit b, between the last verified a and the tip d: commit is not signed' });
  });

  it('on a first start (no base), verifies the tip alone', async () => {
    const r = repo(['b']);
    expect(await verifyChain(r.repo, undefined, 'd', { verify: r.verify, allowRewind: false })).toEqual({ ok: true, verified: 1 });
  });

  it('refuses a tip that does not descend from the base (a force-push back), unless rewinds are allowed', async () => {
    const r = repo();
    expect(await verifyChain(r.repo, 'd', 'b', { verify: r.verify, allowRewind: false })).toMatchObject({ ok: false, reason: expect.stringMatching(/^the tip b is refused: it does not descend from d, the last verified commit/) });
    expect(await verifyChain(r.repo, 'd', 'e', { verify: r.verify, allowRewind: false })).toMatchObject({ ok: false });
    expect(await verifyChain(r.repo, 'd', 'b', { verify: r.verify, allowRewind: true })).toEqual({ ok: true, verified: 1 });
  });

  it('stops walking after the limit', async () => {
    const r = repo();
    expect(await verifyChain(r.repo, 'a', 'd', { verify: r.verify, allowRewind: false, limit: 2 })).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 2 commits lead from it back to a/) });
  });
});
