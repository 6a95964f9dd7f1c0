import { isAgentError } from '../core/errors.js';
import type { StateDocument } from '../ports/state.js';

/** What the notifier remembers about one problem (one dedupKey) on one channel. */
export interface DedupEntry {
  /** ms since the epoch: first message about this problem (since it last went quiet). */
  firstAt: number;
  /** ms: last message actually sent. */
  lastSentAt: number;
  /** ms: last time the event was seen, sent or not. */
  lastSeenAt: number;
  /** Repeats held back since `lastSentAt`. */
  suppressed: number;
}

/** Counters and last outcome of one channel. */
export interface ChannelCounters {
  sent: number;
  failed: number;
  suppressed: number;
  /** ISO times. */
  lastSuccessAt?: string;
  lastError?: string;
  lastErrorAt?: string;
  lastErrorKind?: string;
}

/** Everything the notifier keeps across restarts, per channel name. */
export interface NotifierState {
  version: 1;
  channels: Record<string, { counters: ChannelCounters; dedup: Record<string, DedupEntry> }>;
}

/** Where the notifier keeps its state (a file in the state directory, or memory in tests). */
export interface NotifierStateStore {
  load(): Promise<NotifierState | undefined>;
  save(state: NotifierState): Promise<void>;
}

function isState(value: unknown): value is NotifierState {
  const v = value as NotifierState | undefined;
  return typeof v === 'object' && v !== null && v.version === 1 && typeof v.channels === 'object' && v.channels !== null;
}

/**
 * The notifier's state kept in a document of the state directory (replaced atomically: a crash
 * leaves the old or the new state). A document that is unreadable or of another version counts
 * as absent: losing de-duplication costs at most one repeated message, refusing to start would
 * cost them all.
 */
export function notifierStateIn(doc: StateDocument<unknown>): NotifierStateStore {
  return {
    async load() {
      try {
        const value = await doc.load();
        return isState(value) ? value : undefined;
      } catch (err) {
        if (isAgentError(err, 'STATE_CORRUPT')) return undefined;
        throw err;
      }
    },
    save: (state) => doc.save(state),
  };
}

/** An in-memory store (tests, commands that must not write). */
export function createMemoryNotifierState(initial?: NotifierState): NotifierStateStore & { current(): NotifierState | undefined } {
  let saved = initial ? structuredClone(initial) : undefined;
  return {
    async load() {
      return saved ? structuredClone(saved) : undefined;
    },
    async save(state) {
      saved = structuredClone(state);
    },
    current: () => saved,
  };
}
