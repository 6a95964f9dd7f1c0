import { parseDuration } from '../core/duration.js';
import { AgentError, errorMessage } from '../core/errors.js';
import type { Channel } from './channel.js';
import { createSesChannel, type SesChannelConfig } from './channels/ses.js';
import { createSmtpChannel, type SmtpChannelConfig } from './channels/smtp.js';
import { createWebhookChannel } from './channels/webhook.js';
import { EVENT_TYPES, type AgentEventType } from './events.js';

export { NOTIFICATIONS_SCHEMA } from './config-schema.js';

/** `notifications` as written in the configuration file (already checked against NOTIFICATIONS_SCHEMA). */
export interface NotificationsConfig {
  reminderInterval?: string;
  unreachableAfter?: string;
  timeout?: string;
  channels: Record<string, NotificationChannelConfig>;
}

/** One channel in the file: exactly one of ses, smtp, webhook. */
export interface NotificationChannelConfig {
  events?: AgentEventType[];
  ses?: SesChannelConfig;
  smtp?: Omit<SmtpChannelConfig, 'password' | 'port'> & { port?: number; passwordFile?: string; passwordEnv?: string };
  webhook?: { url?: string; urlFile?: string; urlEnv?: string; format?: 'json' | 'slack'; headers?: Record<string, string>; headersFile?: string };
}

/** The timing part, in milliseconds. */
export interface NotificationSettings {
  reminderIntervalMs: number;
  unreachableAfterMs: number;
  timeoutMs: number;
}

/** Reads a secret file (injected: tests and callers decide how). */
export type ReadTextFile = (path: string) => Promise<string>;

function duration(value: string | undefined, fallback: string, key: string, min: number): number {
  const ms = parseDuration(value ?? fallback);
  if (ms === undefined || ms < min) throw new AgentError('CONFIG_INVALID', `notifications.${key}: "${value}" is not a duration of at least ${min} ms`);
  return ms;
}

/** Timing with defaults: reminders every 1 h, unreachable after 10 min, 10 s per send. */
export function notificationSettings(config: NotificationsConfig | undefined): NotificationSettings {
  return {
    reminderIntervalMs: duration(config?.reminderInterval, '1h', 'reminderInterval', 1000),
    unreachableAfterMs: duration(config?.unreachableAfter, '10m', 'unreachableAfter', 1000),
    timeoutMs: duration(config?.timeout, '10s', 'timeout', 100),
  };
}

async function readSecret(readFile: ReadTextFile, path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path);
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot read ${what} file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  // editors add a final newline; it is never part of the secret
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new AgentError('CONFIG_INVALID', `${what} file ${path} is empty`);
  return value;
}

function fromEnv(env: Record<string, string | undefined>, name: string, what: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new AgentError('CONFIG_INVALID', `environment variable ${name} (${what}) is not set`);
  return value;
}

/** "Name: value" lines (# comments and blank lines ignored), as curl's -H @file. */
export function parseHeaderLines(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(line);
    // never quote the line: it may hold the secret
    if (!m) throw new AgentError('CONFIG_INVALID', `${path}:${i + 1}: not a "Name: value" header line`);
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** A webhook URL with user info (https://user:pass@host) becomes a Basic Authorization header: fetch refuses such URLs. */
function splitUserInfo(url: string): { url: string; authorization?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AgentError('CONFIG_INVALID', 'webhook URL is not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AgentError('CONFIG_INVALID', `webhook URL must be http or https, not ${u.protocol}`);
  if (!u.username && !u.password) return { url };
  const basic = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.toString(), authorization: `Basic ${basic}` };
}

async function buildOne(name: string, c: NotificationChannelConfig, env: Record<string, string | undefined>, readFile: ReadTextFile, onSecret: (s: string) => void): Promise<Channel> {
  const kinds = (['ses', 'smtp', 'webhook'] as const).filter((k) => c[k] !== undefined);
  if (kinds.length !== 1) throw new AgentError('CONFIG_INVALID', `notification channel "${name}" needs exactly one of ses, smtp, webhook (has ${kinds.join(', ') || 'none'})`);
  const what = (s: string) => `${s} of notification channel "${name}"`;
  if (c.ses) return createSesChannel(name, { ...c.ses, to: [...c.ses.to] });
  if (c.smtp) {
    const { passwordFile, passwordEnv, port, ...smtp } = c.smtp;
    let password: string | undefined;
    if (passwordFile) password = await readSecret(readFile, passwordFile, what('SMTP password'));
    else if (passwordEnv) password = fromEnv(env, passwordEnv, what('SMTP password'));
    if (password !== undefined) onSecret(password);
    if (smtp.username !== undefined && password === undefined) throw new AgentError('CONFIG_INVALID', `${what('SMTP')}: username without passwordFile or passwordEnv`);
    const secure = smtp.secure ?? false;
    return createSmtpChannel(name, {
      ...smtp,
      to: [...smtp.to],
      port: port ?? (secure ? 465 : 587),
      secure,
      // never send a password in clear text unless told so explicitly
      starttls: smtp.starttls ?? (!secure && smtp.username !== undefined),
      ...(password !== undefined ? { password } : {}),
    });
  }
  const w = c.webhook ?? {};
  const sources = [w.url, w.urlFile, w.urlEnv].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new AgentError('CONFIG_INVALID', `${what('webhook')}: exactly one of url, urlFile, urlEnv`);
  const rawUrl = w.url ?? (w.urlFile ? await readSecret(readFile, w.urlFile, what('webhook URL')) : fromEnv(env, w.urlEnv as string, what('webhook URL')));
  // the path of a chat hook URL is its secret; redact it wherever it could show up
  if (!w.url) onSecret(rawUrl.trim());
  const { url, authorization } = splitUserInfo(rawUrl.trim());
  const headers: Record<string, string> = { ...w.headers };
  if (authorization) headers.authorization = authorization;
  if (authorization) onSecret(authorization);
  if (w.headersFile) {
    const secret = parseHeaderLines(await readSecret(readFile, w.headersFile, what('webhook headers')), w.headersFile);
    for (const v of Object.values(secret)) onSecret(v);
    Object.assign(headers, secret);
  }
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n]/.test(v)) throw new AgentError('CONFIG_INVALID', `${what('webhook')}: header ${k} contains a line break`);
  }
  return createWebhookChannel(name, { url, format: w.format ?? 'json', headers });
}

/**
 * The channels of the configuration, secrets resolved from files and environment variables.
 * `onSecret` receives every secret value read, for the caller's redaction list.
 */
export async function buildChannels(
  config: NotificationsConfig | undefined,
  env: Record<string, string | undefined>,
  readFile: ReadTextFile,
  onSecret: (secret: string) => void = () => undefined,
): Promise<{ channel: Channel; events: AgentEventType[] }[]> {
  const out: { channel: Channel; events: AgentEventType[] }[] = [];
  for (const [name, c] of Object.entries(config?.channels ?? {})) {
    const events = c.events ?? [...EVENT_TYPES];
    const unknown = events.filter((e) => !EVENT_TYPES.includes(e));
    if (unknown.length) throw new AgentError('CONFIG_INVALID', `notification channel "${name}": unknown event types ${unknown.join(', ')}`);
    out.push({ channel: await buildOne(name, c, env, readFile, onSecret), events: [...events] });
  }
  return out;
}
