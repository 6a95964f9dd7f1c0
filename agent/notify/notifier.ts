import type { Logger } from 'pino';
import { AgentError, errorMessage } from '../core/errors.js';
import { NotifySendError, sendWithDeadline, type Channel } from './channel.js';
import type { AgentEvent, AgentEventType } from './events.js';
import type { ChannelCounters, DedupEntry, NotifierState, NotifierStateStore } from './notifier-state.js';
import { normalizeEvent, redactEvent, renderMessage, renderReminder, stripUrlUserInfo, type Redact } from './render.js';

export { notifierStateIn, createMemoryNotifierState, type NotifierState, type NotifierStateStore } from './notifier-state.js';

/** One channel and the event types routed to it. */
export interface NotifierRoute {
  channel: Channel;
  events: readonly AgentEventType[];
}

/** What the notifier needs; everything is passed in (no globals), so tests control time and I/O. */
export interface NotifierDeps {
  channels: readonly NotifierRoute[];
  /** For de-duplication and status times only; send deadlines use real timers. */
  clock: { now(): number };
  log: Logger;
  /** Removes the secrets the caller knows of; applied to every text that leaves (messages, status, logs). */
  redact: Redact;
  /** A repeat of a problem is held back this long after its last message; then a reminder goes. Default 1 h. */
  reminderIntervalMs?: number;
  /** Deadline of one send on one channel. Default 10 s. */
  timeoutMs?: number;
  /** Keeps de-duplication and channel counters across restarts. */
  state?: NotifierStateStore;
}

/** One channel as `agent status` shows it. */
export interface ChannelStatus extends ChannelCounters {
  name: string;
  kind: Channel['kind'];
  /** Messages queued for this channel, not sent yet. */
  pending: number;
}

export interface Notifier {
  /** Queues the event for its channels and returns at once; never throws. */
  notify(event: AgentEvent): void;
  /** Resolves when everything queued so far was sent (or failed) and the state saved. */
  flush(): Promise<void>;
  status(): ChannelStatus[];
}

const DEFAULT_REMINDER_MS = 3_600_000;
const DEFAULT_TIMEOUT_MS = 10_000;
// A channel that hangs until its deadline must not let messages pile up without bound.
const MAX_PENDING = 100;
const MAX_KEYS = 500;
const MAX_ERROR = 500;

interface Lane {
  route: NotifierRoute;
  events: ReadonlySet<AgentEventType>;
  tail: Promise<void>;
  pending: number;
  counters: ChannelCounters;
  dedup: Map<string, DedupEntry>;
}

interface Item {
  /** As given, for rendering (render redacts the assembled text). */
  event: AgentEvent;
  /** Redacted copy, the only one a channel sees. */
  safeEvent: AgentEvent;
  receivedAt: number;
}

/**
 * Sends events to channels in the background: one serial queue per channel, so a slow or dead
 * channel delays only itself; each send has a deadline; a failure is counted, logged and shown
 * in status(), and retried only when the next event comes (no retry loop that would flood a
 * relay coming back). Repeats of one problem (same dedupKey) are held back for
 * `reminderIntervalMs` after a message, then one reminder says how many there were.
 */
export function createNotifier(deps: NotifierDeps): Notifier {
  const { clock, log } = deps;
  const reminderMs = deps.reminderIntervalMs ?? DEFAULT_REMINDER_MS;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const keepMs = Math.max(7 * 24 * 3_600_000, 2 * reminderMs);
  const names = new Set<string>();
  const lanes: Lane[] = deps.channels.map((route) => {
    if (names.has(route.channel.name)) throw new AgentError('CONFIG_INVALID', `two notification channels are named "${route.channel.name}"`);
    names.add(route.channel.name);
    return { route, events: new Set(route.events), tail: Promise.resolve(), pending: 0, counters: { sent: 0, failed: 0, suppressed: 0 }, dedup: new Map() };
  });
  const iso = (ms: number) => new Date(ms).toISOString();
  const clean = (text: string): string => {
    let out: string;
    try {
      out = deps.redact(text);
    } catch {
      out = '[text withheld: redaction failed]';
    }
    out = stripUrlUserInfo(out).replace(/\s+/g, ' ').trim();
    return out.length > MAX_ERROR ? `${out.slice(0, MAX_ERROR - 1)}…` : out;
  };

  let saving: Promise<void> = Promise.resolve();
  let saveQueued = false;
  const loaded = restore().catch(() => undefined);

  async function restore(): Promise<void> {
    if (!deps.state) return;
    let saved: NotifierState | undefined;
    try {
      saved = await deps.state.load();
    } catch (err) {
      log.warn({ error: clean(errorMessage(err)) }, 'notifier state not readable, starting without it');
    }
    // a damaged file must cost de-duplication, never delivery: every send waits for this
    for (const lane of lanes) {
      try {
        const s = saved?.channels[lane.route.channel.name];
        if (!s) continue;
        const c = lane.counters;
        Object.assign(c, s.counters, { sent: c.sent + (s.counters.sent ?? 0), failed: c.failed + (s.counters.failed ?? 0), suppressed: c.suppressed + (s.counters.suppressed ?? 0) });
        for (const [key, entry] of Object.entries(s.dedup ?? {})) if (typeof entry?.lastSentAt === 'number') lane.dedup.set(key, entry);
      } catch {
        lane.counters = { sent: 0, failed: 0, suppressed: 0 };
        lane.dedup.clear();
      }
    }
  }

  function snapshot(): NotifierState {
    const now = clock.now();
    const state: NotifierState = { version: 1, channels: {} };
    for (const lane of lanes) {
      const kept = [...lane.dedup].filter(([, e]) => now - e.lastSeenAt < keepMs).sort((a, b) => b[1].lastSeenAt - a[1].lastSeenAt);
      lane.dedup = new Map(kept.slice(0, MAX_KEYS));
      state.channels[lane.route.channel.name] = { counters: { ...lane.counters }, dedup: Object.fromEntries(lane.dedup) };
    }
    return state;
  }

  /** Coalesced: while a save waits in line, further changes ride on it. */
  function persist(): void {
    const store = deps.state;
    if (!store || saveQueued) return;
    saveQueued = true;
    saving = saving
      .then(async () => {
        saveQueued = false;
        await store.save(snapshot());
      })
      .catch((err: unknown) => log.warn({ error: clean(errorMessage(err)) }, 'notifier state not saved'));
  }

  async function deliver(lane: Lane, item: Item): Promise<void> {
    await loaded;
    const { channel } = lane.route;
    const { event, safeEvent, receivedAt } = item;
    const key = safeEvent.dedupKey;
    const c = lane.counters;
    const fields = { channel: channel.name, kind: channel.kind, event: event.type, dedupKey: key };
    const entry = lane.dedup.get(key);
    if (entry && receivedAt - entry.lastSentAt < reminderMs) {
      entry.suppressed += 1;
      entry.lastSeenAt = Math.max(entry.lastSeenAt, receivedAt);
      c.suppressed += 1;
      log.debug({ ...fields, suppressed: entry.suppressed }, 'notification suppressed as a repeat');
      persist();
      return;
    }
    const reminder = entry !== undefined && entry.suppressed > 0 ? entry : undefined;
    try {
      const message = reminder
        ? renderReminder(event, { count: reminder.suppressed, since: iso(reminder.lastSentAt), firstAt: iso(reminder.firstAt) }, deps.redact)
        : renderMessage(event, deps.redact);
      await sendWithDeadline(channel, message, safeEvent, timeoutMs);
      lane.dedup.set(key, { firstAt: reminder?.firstAt ?? receivedAt, lastSentAt: receivedAt, lastSeenAt: receivedAt, suppressed: 0 });
      c.sent += 1;
      c.lastSuccessAt = iso(clock.now());
      log.info({ ...fields, reminder: reminder !== undefined }, 'notification sent');
    } catch (err) {
      const kind = err instanceof NotifySendError ? err.kind : 'other';
      // keep the problem's history: the next attempt still reports the repeats, this one included
      if (entry) {
        entry.suppressed += 1;
        entry.lastSeenAt = Math.max(entry.lastSeenAt, receivedAt);
      }
      c.failed += 1;
      c.lastError = clean(errorMessage(err));
      c.lastErrorAt = iso(clock.now());
      c.lastErrorKind = kind;
      log.warn({ ...fields, error: c.lastError, errorKind: kind }, 'notification not sent');
    }
    persist();
  }

  function enqueue(lane: Lane, item: Item): void {
    const c = lane.counters;
    if (lane.pending >= MAX_PENDING) {
      c.failed += 1;
      c.lastError = `queue full (${MAX_PENDING} messages waiting): message dropped`;
      c.lastErrorAt = iso(item.receivedAt);
      c.lastErrorKind = 'other';
      log.warn({ channel: lane.route.channel.name, kind: lane.route.channel.kind, event: item.event.type }, 'notification dropped, channel queue full');
      return;
    }
    lane.pending += 1;
    lane.tail = lane.tail
      .then(() => deliver(lane, item))
      .catch((err: unknown) => log.error({ channel: lane.route.channel.name, error: clean(errorMessage(err)) }, 'notification delivery crashed'))
      .finally(() => {
        lane.pending -= 1;
      });
  }

  return {
    notify(event) {
      try {
        const receivedAt = clock.now();
        const full = normalizeEvent(event, receivedAt);
        const item: Item = { event: full, safeEvent: redactEvent(full, deps.redact), receivedAt };
        for (const lane of lanes) if (lane.events.has(full.type)) enqueue(lane, item);
      } catch (err) {
        try {
          log.error({ error: clean(errorMessage(err)) }, 'notification dropped, event not usable');
        } catch {
          // notify() must never throw, not even when the logger does
        }
      }
    },
    async flush() {
      await loaded;
      for (;;) {
        const waited = [...lanes.map((l) => l.tail), saving];
        await Promise.all(waited);
        if (lanes.every((l, i) => l.tail === waited[i]) && saving === waited[lanes.length]) return;
      }
    },
    status() {
      return lanes.map((l) => ({ name: l.route.channel.name, kind: l.route.channel.kind, ...l.counters, pending: l.pending }));
    },
  };
}
