import { errorMessage } from '../../core/errors.js';
import { NotifySendError, type Channel, type RenderedMessage } from '../channel.js';
import type { AgentEvent } from '../events.js';

/** A webhook channel: where to POST and in which shape. */
export interface WebhookChannelConfig {
  /** The endpoint. Often a secret itself (Slack/Mattermost hook URLs): never shown beyond its origin. */
  url: string;
  /** json: the event object; slack: a Slack-compatible `{ text, blocks }` message (Mattermost, Rocket.Chat too). */
  format: 'json' | 'slack';
  /** Extra request headers (e.g. Authorization); secrets, never logged. */
  headers?: Record<string, string>;
}

const MAX_ERROR_BODY = 300;
// Slack limits: section text 3000 characters, header 150.
const MAX_SECTION = 2900;
const MAX_HEADER = 150;

/** Slack's mrkdwn needs exactly these three escaped (https://api.slack.com/reference/surfaces/formatting#escaping). */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The Slack-compatible payload. `text` is what Mattermost and Rocket.Chat show (they ignore
 * `blocks`) and what Slack uses for the notification itself, so it carries the whole message;
 * it stays plain (Mattermost shows entities literally) except for Slack's `<!channel>` and
 * `<@user>` sequences, which a container's output in `reason` must not be able to trigger.
 */
export function slackPayload(message: RenderedMessage, event: AgentEvent): { text: string; blocks: unknown[] } {
  const defuse = (t: string) => t.replace(/<([!@#])/g, '&lt;$1');
  const icon = event.severity === 'critical' ? ':rotating_light:' : event.severity === 'warning' ? ':warning:' : ':information_source:';
  return {
    text: defuse(`${message.subject}\n\n${message.text}`),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(message.subject, MAX_HEADER), emoji: false } },
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} \`\`\`${slackEscape(clip(message.text, MAX_SECTION))}\`\`\`` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(`${event.type} · ${event.severity} · ${event.host}/${event.stack}`) }] },
    ],
  };
}

/** Only scheme, host and port: the path and query of a hook URL are its secret. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

/** POSTs JSON; any answer but 2xx is a failure. The deadline comes from the notifier's signal. */
export function createWebhookChannel(name: string, config: WebhookChannelConfig): Channel {
  const origin = originOf(config.url);
  return {
    name,
    kind: 'webhook',
    async send(message, event, signal) {
      const payload = config.format === 'slack' ? slackPayload(message, event) : event;
      let res: Response;
      try {
        res = await fetch(config.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'gitops-agent', ...config.headers },
          body: JSON.stringify(payload),
          signal,
          // a redirect would re-send the payload (and the headers) somewhere else
          redirect: 'manual',
        });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        // undici says "fetch failed"; the cause has the useful part (ECONNREFUSED 127.0.0.1:port)
        const cause = (err as { cause?: unknown }).cause;
        const detail = cause ? errorMessage(cause) : errorMessage(err);
        throw new NotifySendError('network', `webhook ${origin} not reachable: ${detail}`, { cause: err, data: { origin } });
      }
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => undefined);
        return;
      }
      const answer = clip((await res.text().catch(() => '')).replace(/\s+/g, ' ').trim(), MAX_ERROR_BODY);
      throw new NotifySendError('http', `webhook ${origin} answered ${res.status}${answer ? `: ${answer}` : ''}`, { data: { origin, status: res.status } });
    },
  };
}
