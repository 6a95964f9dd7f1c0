import { Writable } from 'node:stream';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Channel, RenderedMessage } from '../../agent/notify/channel.js';
import { NotifySendError } from '../../agent/notify/channel.js';
import { EVENT_TYPES, type AgentEvent, type AgentEventType } from '../../agent/notify/events.js';
import { createMemoryNotifierState, createNotifier, notifierStateIn, type NotifierDeps } from '../../agent/notify/notifier.js';
import { StateStore } from '../../agent/state/store.js';
import { redactText } from '../../agent/source/git/credentials.js';

const HOUR = 3_600_000;
const SECRET = 'smtp-s3cret-value';

interface Sent {
  message: RenderedMessage;
  event: AgentEvent;
}

/** A channel that records, and fails or hangs on demand. */
function fakeChannel(name: string, behaviour: { fail?: () => Error | undefined; hang?: boolean } = {}): Channel & { sent: Sent[]; attempts: number } {
  const sent: Sent[] = [];
  const ch = {
    name,
    kind: 'webhook' as const,
    sent,
    attempts: 0,
    async send(message: RenderedMessage, event: AgentEvent, signal: AbortSignal) {
      ch.attempts += 1;
      if (behaviour.hang) {
        // ignores the signal on purpose: the notifier's deadline must still hold
        await new Promise(() => undefined);
      }
      if (signal.aborted) throw signal.reason;
      const err = behaviour.fail?.();
      if (err) throw err;
      sent.push({ message, event });
    },
  };
  return ch;
}

function capturingLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

function event(over: Partial<AgentEvent> = {}): AgentEvent {
  return {
    type: 'update-failed',
    severity: 'critical',
    host: 'web-01',
    stack: 'reference',
    service: 'nginx',
    from: '1.22.6',
    to: '1.23.0',
    title: 'nginx update 1.22.6 -> 1.23.0 failed and was rolled back',
    reason: 'probe failed',
    at: '2024-05-01T10:00:00.000Z',
    dedupKey: 'update-failed:reference:nginx:1.23.0',
    ...over,
  };
}

function setup(channels: NotifierDeps['channels'], extra: Partial<NotifierDeps> = {}) {
  let now = Date.parse('2024-05-01T10:00:00.000Z');
  const clock = { now: () => now };
  const { log, lines } = capturingLog();
  const notifier = createNotifier({ channels, clock, log, redact: (t) => redactText(t, [SECRET]), ...extra });
  return { notifier, lines, advance: (ms: number) => (now += ms), clock };
}

describe('de-duplication', () => {
  it('sends the first, suppresses repeats for an hour, then sends one reminder with the count', async () => {
    const ch = fakeChannel('mail');
    const { notifier, advance } = setup([{ channel: ch, events: EVENT_TYPES }]);
    notifier.notify(event());
    await notifier.flush();
    expect(ch.sent).toHaveLength(1);
    expect(ch.sent[0]?.message.subject).toBe('[gitops-agent] web-01/reference: nginx update 1.22.6 -> 1.23.0 failed and was rolled back');

    for (let i = 0; i < 3; i++) {
      advance(10 * 60_000);
      notifier.notify(event());
    }
    await notifier.flush();
    expect(ch.sent).toHaveLength(1);
    expect(notifier.status()[0]).toMatchObject({ sent: 1, suppressed: 3, failed: 0 });

    advance(31 * 60_000); // 61 min after the first message
    notifier.notify(event());
    await notifier.flush();
    expect(ch.sent).toHaveLength(2);
    const reminder = ch.sent[1]?.message as RenderedMessage;
    expect(reminder.subject).toContain('reminder (3 more)');
    expect(reminder.text).toMatch(/^Reminder: this happened again 3 times since 2024-05-01 10:00:00 UTC/);

    // the reminder restarts the interval
    advance(10 * 60_000);
    notifier.notify(event());
    await notifier.flush();
    expect(ch.sent).toHaveLength(2);
    expect(notifier.status()[0]).toMatchObject({ sent: 2, suppressed: 4 });
  });

  it('other keys are not affected, and a problem that went quiet starts again as a new message', async () => {
    const ch = fakeChannel('mail');
    const { notifier, advance } = setup([{ channel: ch, events: EVENT_TYPES }], { reminderIntervalMs: HOUR });
    notifier.notify(event());
    notifier.notify(event({ dedupKey: 'backup-failed:db', type: 'backup-failed', title: 'backup of db failed' }));
    await notifier.flush();
    expect(ch.sent).toHaveLength(2);
    advance(2 * HOUR);
    notifier.notify(event());
    await notifier.flush();
    expect(ch.sent).toHaveLength(3);
    expect(ch.sent[2]?.message.subject).not.toContain('reminder');
  });

  it('keeps de-duplication and counters across a restart (state file)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'notify-state-'));
    try {
      const path = join(dir, 'notifier.json');
      const first = setup([{ channel: fakeChannel('mail'), events: EVENT_TYPES }], { state: notifierStateIn(new StateStore(dir).document('notifier')) });
      first.notifier.notify(event());
      await first.notifier.flush();
      const saved = JSON.parse(await readFile(path, 'utf8'));
      expect(saved.channels.mail.counters.sent).toBe(1);

      const ch = fakeChannel('mail');
      const second = setup([{ channel: ch, events: EVENT_TYPES }], { state: notifierStateIn(new StateStore(dir).document('notifier')) });
      second.advance(5 * 60_000);
      second.notifier.notify(event());
      await second.notifier.flush();
      expect(ch.sent).toHaveLength(0);
      expect(second.notifier.status()[0]).toMatchObject({ sent: 1, suppressed: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('a damaged or unreadable state costs de-duplication, never delivery', async () => {
    const damaged = { load: async () => ({ version: 1, channels: { mail: { counters: null, dedup: 7 } } }) as never, save: async () => undefined };
    const failing = { load: async () => Promise.reject(new Error('EIO')), save: async () => Promise.reject(new Error('ENOSPC')) };
    for (const state of [damaged, failing]) {
      const ch = fakeChannel('mail');
      const { notifier } = setup([{ channel: ch, events: EVENT_TYPES }], { state });
      notifier.notify(event());
      await notifier.flush();
      expect(ch.sent).toHaveLength(1);
    }
  });
});

describe('routing', () => {
  it('sends each event type only to the channels that asked for it', async () => {
    const failures = fakeChannel('failures');
    const all = fakeChannel('all');
    const certs = fakeChannel('certs');
    const { notifier } = setup([
      { channel: failures, events: ['update-failed', 'revert-refused'] },
      { channel: all, events: EVENT_TYPES },
      { channel: certs, events: ['certificate-renewed', 'certificate-renewal-failed'] },
    ]);
    const types: AgentEventType[] = ['update-failed', 'update-applied', 'certificate-renewed', 'revert-refused'];
    for (const type of types) notifier.notify(event({ type, dedupKey: type }));
    await notifier.flush();
    expect(failures.sent.map((s) => s.event.type)).toEqual(['update-failed', 'revert-refused']);
    expect(all.sent.map((s) => s.event.type)).toEqual(types);
    expect(certs.sent.map((s) => s.event.type)).toEqual(['certificate-renewed']);
  });
});

describe('failures', () => {
  it('a failing channel neither blocks nor fails the others; it shows in status and the log, without the secret', async () => {
    const broken = fakeChannel('relay', { fail: () => new NotifySendError('auth', `SMTP relay: EAUTH 535: login ${SECRET} refused for https://u:pw@relay.example`) });
    const good = fakeChannel('chat');
    const { notifier, lines } = setup([
      { channel: broken, events: EVENT_TYPES },
      { channel: good, events: EVENT_TYPES },
    ]);
    notifier.notify(event());
    await notifier.flush();
    expect(good.sent).toHaveLength(1);
    const [relay, chat] = notifier.status();
    expect(chat).toMatchObject({ name: 'chat', sent: 1, failed: 0 });
    expect(relay).toMatchObject({ name: 'relay', kind: 'webhook', sent: 0, failed: 1, lastErrorKind: 'auth', lastErrorAt: '2024-05-01T10:00:00.000Z' });
    expect(relay?.lastError).toContain('EAUTH 535');
    expect(relay?.lastError).not.toContain(SECRET);
    expect(relay?.lastError).not.toContain('pw@');
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'notification not sent');
    expect(warn).toMatchObject({ channel: 'relay', event: 'update-failed', errorKind: 'auth' });
    expect(lines.join('')).not.toContain(SECRET);
  });

  it('a failed send is retried with the next event, not before; a repeat after a failure is not suppressed', async () => {
    let failing = true;
    const ch = fakeChannel('relay', { fail: () => (failing ? new NotifySendError('network', 'ECONNREFUSED') : undefined) });
    const { notifier, advance } = setup([{ channel: ch, events: EVENT_TYPES }]);
    notifier.notify(event());
    await notifier.flush();
    await new Promise((r) => setTimeout(r, 50));
    expect(ch.attempts).toBe(1);
    failing = false;
    advance(60_000);
    notifier.notify(event());
    await notifier.flush();
    expect(ch.attempts).toBe(2);
    expect(ch.sent).toHaveLength(1);
    expect(notifier.status()[0]).toMatchObject({ sent: 1, failed: 1, lastErrorKind: 'network' });
    expect(notifier.status()[0]?.lastSuccessAt).toBe('2024-05-01T10:01:00.000Z');
  });

  it('a channel that hangs is cut at the deadline while the others already delivered', async () => {
    const hanging = fakeChannel('hook', { hang: true });
    const good = fakeChannel('mail');
    const { notifier } = setup(
      [
        { channel: hanging, events: EVENT_TYPES },
        { channel: good, events: EVENT_TYPES },
      ],
      { timeoutMs: 200 },
    );
    const t0 = Date.now();
    notifier.notify(event());
    await new Promise((r) => setTimeout(r, 50));
    expect(good.sent).toHaveLength(1);
    await notifier.flush();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(notifier.status()[0]).toMatchObject({ name: 'hook', failed: 1, lastErrorKind: 'timeout' });
    expect(notifier.status()[0]?.lastError).toMatch(/no answer within/);
  });

  it('notify() never throws and returns before anything is sent', async () => {
    const ch = fakeChannel('mail');
    const throwingLog = pino({ level: 'silent' });
    const notifier = createNotifier({
      channels: [{ channel: ch, events: EVENT_TYPES }],
      clock: { now: () => 0 },
      log: throwingLog,
      redact: () => {
        throw new Error('redact broken');
      },
      state: createMemoryNotifierState(),
    });
    expect(() => notifier.notify(undefined as unknown as AgentEvent)).not.toThrow();
    expect(() => notifier.notify({ type: 'update-failed' } as AgentEvent)).not.toThrow();
    expect(() => notifier.notify(event({ details: { fn: (() => 1) as unknown as string } }))).not.toThrow();
    notifier.notify(event());
    expect(ch.sent).toHaveLength(0); // queued, not sent synchronously
    await notifier.flush();
    // the event missing everything still went, with fallbacks; nothing leaked past the broken redact
    expect(ch.sent.length).toBeGreaterThanOrEqual(1);
    for (const s of ch.sent) expect(s.message.text).toContain('withheld');
  });

  it('a channel whose send throws synchronously is a failure like any other', async () => {
    const ch: Channel = {
      name: 'weird',
      kind: 'smtp',
      send() {
        throw new Error('sync boom');
      },
    };
    const { notifier } = setup([{ channel: ch, events: EVENT_TYPES }]);
    notifier.notify(event());
    await notifier.flush();
    expect(notifier.status()[0]).toMatchObject({ failed: 1, lastError: 'sync boom', lastErrorKind: 'other' });
  });

  it('refuses two channels with one name', () => {
    expect(() => setup([{ channel: fakeChannel('x'), events: EVENT_TYPES }, { channel: fakeChannel('x'), events: EVENT_TYPES }])).toThrow(/two notification channels/);
  });
});
