import type { RevertOutcome } from '../model/revert.js';
import type { Logger } from 'pino';
import { isoTime } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { findOwnRevert, revertFailedUpdate, type RevertDeps } from '../revert/revert.js';
import type { PassState } from './pass-state.js';

/** A refused or failed revert is tried again after this long; a pending one at every pass. */
export const REVERT_RETRY_MS = 10 * 60 * 1000;

/** Tries every revert that is pending, or due for another attempt; records what happened. */
export async function processReverts(pass: PassState, deps: RevertDeps, currentHashes: Readonly<Record<string, string | undefined>>, log: Logger): Promise<RevertOutcome[]> {
  const now = deps.clock.now();
  const outcomes: RevertOutcome[] = [];
  for (const [service, s] of Object.entries(pass.state.services)) {
    const r = s.revert;
    if (!r || r.state === 'pushed') continue;
    // The desired state moved on: by a person who fixed or reverted it (nothing to write), or by
    // our own revert, pushed by an agent that died before it could record it (record it now).
    const movedOn = currentHashes[service] !== r.request.failedHash;
    const own = movedOn ? await findOwnRevert(deps, r.request).catch(() => undefined) : undefined;
    if (movedOn && !own) {
      pass.change((st) => {
        delete (st.services[service] as { revert?: unknown }).revert;
      });
      await pass.checkpoint();
      continue;
    }
    if (!own && r.nextAttemptAt && Date.parse(r.nextAttemptAt) > now) continue;
    let result;
    try {
      result = own ?? (await revertFailedUpdate(deps, r.request));
    } catch (err) {
      log.error({ service, err: errorMessage(err) }, 'Revert commit could not be made; will retry');
      pass.change((st) => {
        const cur = st.services[service]?.revert;
        if (cur) Object.assign(cur, { attempts: cur.attempts + 1, reason: errorMessage(err) });
      });
      await pass.checkpoint();
      continue;
    }
    pass.change((st) => {
      const entry = st.services[service];
      const cur = entry?.revert;
      if (!entry || !cur) return;
      cur.attempts++;
      cur.at = isoTime(deps.clock);
      if (result.status === 'pushed') {
        outcomes.push({ service, status: 'pushed', commit: result.sha, reverts: result.reverts, ...(result.quarantined ? { quarantined: result.quarantined } : {}), request: cur.request });
        Object.assign(cur, { state: 'pushed', commit: result.sha, reverts: result.reverts });
        if (result.quarantined) cur.quarantined = result.quarantined;
        delete cur.reason;
        delete cur.nextAttemptAt;
      } else if (result.status === 'not-needed') {
        delete entry.revert;
      } else {
        outcomes.push({ service, status: result.status, reason: result.reason, request: cur.request });
        Object.assign(cur, { state: result.status, reason: result.reason, nextAttemptAt: new Date(deps.clock.now() + REVERT_RETRY_MS).toISOString() });
      }
    });
    await pass.checkpoint();
    if (result.status === 'refused' || result.status === 'failed') {
      log.error({ service, reason: result.reason }, 'Revert commit refused: the service is held on its last good version, Git still names the failed one');
    }
  }
  return outcomes;
}
