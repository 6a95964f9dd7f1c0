import { formatDuration } from '../core/duration.js';
import { AgentError } from '../core/errors.js';
import type { AgentEvent } from './events.js';

/** A notification ready to send: the same words for every channel. */
export interface RenderedMessage {
  /** One line, no line breaks. */
  subject: string;
  /** Plain text, several lines. */
  text: string;
}

/** Where notifications go (one configured email sender or webhook). */
export interface Channel {
  /** The configuration's name for it, shown in `agent status` and logs. */
  name: string;
  kind: 'ses' | 'smtp' | 'webhook';
  /**
   * Sends one message; rejects when it was not accepted. `event` is already redacted (the
   * webhook's json format sends it as it is). Must stop when `signal` aborts: the notifier
   * gives each send a deadline.
   */
  send(message: RenderedMessage, event: AgentEvent, signal: AbortSignal): Promise<void>;
  /** Releases connections kept for later sends (SDK clients); optional. */
  close?(): Promise<void>;
}

/** Why a send failed, for `agent status` and for tests. */
export type SendFailureKind = 'timeout' | 'rejected' | 'auth' | 'http' | 'network' | 'other';

/**
 * A send that failed. It never leaves the notifier (notify() does not throw): it ends up in
 * the channel's status and in the log; `kind` says what went wrong.
 */
export class NotifySendError extends AgentError {
  readonly kind: SendFailureKind;

  constructor(kind: SendFailureKind, message: string, options: { cause?: unknown; data?: Record<string, unknown> } = {}) {
    super('NOTIFY_FAILED', message, { data: { ...options.data, kind }, cause: options.cause });
    this.name = 'NotifySendError';
    this.kind = kind;
  }
}

export function isNotifySendError(err: unknown): err is NotifySendError {
  return err instanceof NotifySendError;
}

/** Rejects with the signal's reason once it aborts (for APIs that take no signal). */
export function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Runs one send with a deadline. The channel gets a signal that aborts at the deadline; a
 * channel that ignores it is raced anyway, so the caller never waits longer than `timeoutMs`.
 */
export async function sendWithDeadline(channel: Channel, message: RenderedMessage, event: AgentEvent, timeoutMs: number): Promise<void> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new NotifySendError('timeout', `no answer within ${formatDuration(timeoutMs)}`)), timeoutMs);
  try {
    const sending = Promise.resolve().then(() => channel.send(message, event, ctrl.signal));
    // a channel that ignores the signal may still reject later: that must not be "unhandled"
    sending.catch(() => undefined);
    await Promise.race([sending, whenAborted(ctrl.signal)]);
  } finally {
    clearTimeout(timer);
  }
}
